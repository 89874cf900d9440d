using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// tupleobject.h, listobject.h, dictobject.h. All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyTuple_New(nint len);

    /// <summary>Steals a reference to o (even on failure).</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyTuple_SetItem(PyObject* p, nint pos, PyObject* o);

    /// <returns>Borrowed reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial PyObject* PyTuple_GetItem(PyObject* p, nint pos);

    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial nint PyTuple_Size(PyObject* p);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyList_New(nint len);

    /// <summary>Steals a reference to item (even on failure).</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyList_SetItem(PyObject* list, nint index, PyObject* item);

    /// <returns>Borrowed reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial PyObject* PyList_GetItem(PyObject* list, nint index);

    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial nint PyList_Size(PyObject* list);

    /// <summary>Does not steal: the list takes its own reference.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyList_Append(PyObject* list, PyObject* item);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyDict_New();

    /// <summary>Does not steal key or val.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyDict_SetItem(PyObject* p, PyObject* key, PyObject* val);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyDict_SetItemString(PyObject* p, byte* key, PyObject* val);

    /// <returns>Borrowed reference; NULL without an exception when absent, with one on error.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyDict_GetItemWithError(PyObject* p, PyObject* key);

    /// <summary>*key and *value are borrowed references. The dict must not change while iterating.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyDict_Next(PyObject* p, nint* ppos, PyObject** pkey, PyObject** pvalue);

    [LibraryImport(Libraries.Python)]
    internal static partial nint PyDict_Size(PyObject* p);
}
