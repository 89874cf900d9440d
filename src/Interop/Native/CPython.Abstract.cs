using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// abstract.h (and cpython/abstract.h for vectorcall). All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>New reference, or NULL with an exception set. kwargs may be NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_Call(NativePyObject* callable, NativePyObject* args, NativePyObject* kwargs);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_CallNoArgs(NativePyObject* callable);

    /// <summary>Exported on every supported version; used for positional calls before 3.11,
    /// where <c>PyObject_Vectorcall</c> is only a static inline function.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_VectorcallDict(NativePyObject* callable, NativePyObject** args, nuint nargsf, NativePyObject* kwdict);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python), Since(3, 11)]
    internal static partial NativePyObject* PyObject_Vectorcall(NativePyObject* callable, NativePyObject** args, nuint nargsf, NativePyObject* kwnames);

    /// <summary>args[0] is self; args[1..] the arguments.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_VectorcallMethod(NativePyObject* name, NativePyObject** args, nuint nargsf, NativePyObject* kwnames);

    /// <summary>Set on nargsf when args[-1] may be overwritten by the callee (saves it an allocation).</summary>
    internal const ulong PY_VECTORCALL_ARGUMENTS_OFFSET = 1UL << 63;

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_GetItem(NativePyObject* o, NativePyObject* key);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_SetItem(NativePyObject* o, NativePyObject* key, NativePyObject* v);

    /// <returns>The length, or -1 with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial nint PyObject_Size(NativePyObject* o);

    /// <returns>1, 0, or -1 with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_IsInstance(NativePyObject* inst, NativePyObject* cls);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_GetIter(NativePyObject* o);

    /// <returns>New reference; NULL at the end (no exception) or on error (exception set).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyIter_Next(NativePyObject* o);

    /// <summary>Sends <paramref name="arg"/> into an iterator (a coroutine's send), without a
    /// StopIteration object for its return.</summary>
    /// <returns>PYGEN_NEXT (yielded) or PYGEN_RETURN with a new reference in <paramref name="presult"/>,
    /// or PYGEN_ERROR with an exception set.</returns>
    [LibraryImport(Libraries.Python), Since(3, 10)]
    internal static partial int PyIter_Send(NativePyObject* iter, NativePyObject* arg, NativePyObject** presult);

    /// <returns>New reference: the base-2/8/16 string ("0x1f"); or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyNumber_ToBase(NativePyObject* n, int @base);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyNumber_Index(NativePyObject* o);
}
