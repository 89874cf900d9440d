using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// tupleobject.h, listobject.h, dictobject.h. All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyTuple_New(nint len);

    /// <summary>Steals a reference to o (even on failure).</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyTuple_SetItem(NativePyObject* p, nint pos, NativePyObject* o);

    /// <returns>Borrowed reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial NativePyObject* PyTuple_GetItem(NativePyObject* p, nint pos);

    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial nint PyTuple_Size(NativePyObject* p);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyList_New(nint len);

    /// <summary>Steals a reference to item (even on failure).</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyList_SetItem(NativePyObject* list, nint index, NativePyObject* item);

    /// <returns>Borrowed reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial NativePyObject* PyList_GetItem(NativePyObject* list, nint index);

    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial nint PyList_Size(NativePyObject* list);

    /// <summary>Does not steal: the list takes its own reference.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyList_Append(NativePyObject* list, NativePyObject* item);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyDict_New();

    /// <summary>Does not steal key or val.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyDict_SetItem(NativePyObject* p, NativePyObject* key, NativePyObject* val);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyDict_SetItemString(NativePyObject* p, byte* key, NativePyObject* val);

    /// <returns>Borrowed reference; NULL without an exception when absent, with one on error.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyDict_GetItemWithError(NativePyObject* p, NativePyObject* key);

    /// <summary>*key and *value are borrowed references. The dict must not change while iterating.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyDict_Next(NativePyObject* p, nint* ppos, NativePyObject** pkey, NativePyObject** pvalue);

    [LibraryImport(Libraries.Python)]
    internal static partial nint PyDict_Size(NativePyObject* p);
}
