using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// abstract.h (and cpython/abstract.h for vectorcall). All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>New reference, or NULL with an exception set. kwargs may be NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyObject_Call(PyObject* callable, PyObject* args, PyObject* kwargs);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyObject_CallNoArgs(PyObject* callable);

    /// <summary>Exported on every supported version; used for positional calls before 3.11,
    /// where <c>PyObject_Vectorcall</c> is only a static inline function.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyObject_VectorcallDict(PyObject* callable, PyObject** args, nuint nargsf, PyObject* kwdict);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python), Since(3, 11)]
    internal static partial PyObject* PyObject_Vectorcall(PyObject* callable, PyObject** args, nuint nargsf, PyObject* kwnames);

    /// <summary>args[0] is self; args[1..] the arguments.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyObject_VectorcallMethod(PyObject* name, PyObject** args, nuint nargsf, PyObject* kwnames);

    /// <summary>Set on nargsf when args[-1] may be overwritten by the callee (saves it an allocation).</summary>
    internal const ulong PY_VECTORCALL_ARGUMENTS_OFFSET = 1UL << 63;

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyObject_GetItem(PyObject* o, PyObject* key);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_SetItem(PyObject* o, PyObject* key, PyObject* v);

    /// <returns>The length, or -1 with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial nint PyObject_Size(PyObject* o);

    /// <returns>1, 0, or -1 with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_IsInstance(PyObject* inst, PyObject* cls);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyObject_GetIter(PyObject* o);

    /// <returns>New reference; NULL at the end (no exception) or on error (exception set).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyIter_Next(PyObject* o);

    /// <returns>New reference: the base-2/8/16 string ("0x1f"); or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyNumber_ToBase(PyObject* n, int @base);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyNumber_Index(PyObject* o);
}
