using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// pyerrors.h. All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>Borrowed reference to the current exception type, or NULL.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial NativePyObject* PyErr_Occurred();

    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_Clear();

    /// <summary>Deprecated in 3.12 (use PyErr_GetRaisedException); the only way before it.
    /// Each out value is a new reference or NULL, possibly unnormalized.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_Fetch(NativePyObject** ptype, NativePyObject** pvalue, NativePyObject** ptraceback);

    /// <summary>Steals all three references.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_Restore(NativePyObject* type, NativePyObject* value, NativePyObject* traceback);

    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_NormalizeException(NativePyObject** exc, NativePyObject** val, NativePyObject** tb);

    /// <returns>New reference to the normalized exception (traceback attached), or NULL; clears the error.</returns>
    [LibraryImport(Libraries.Python), Since(3, 12)]
    internal static partial NativePyObject* PyErr_GetRaisedException();

    /// <summary>Steals exc.</summary>
    [LibraryImport(Libraries.Python), Since(3, 12)]
    internal static partial void PyErr_SetRaisedException(NativePyObject* exc);

    /// <summary>Does not steal type or value. A tuple value is unpacked into arguments.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_SetObject(NativePyObject* type, NativePyObject* value);

    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_SetString(NativePyObject* type, byte* message);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyErr_GivenExceptionMatches(NativePyObject* given, NativePyObject* exc);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyErr_ExceptionMatches(NativePyObject* exc);

    /// <summary>Prints the current exception through sys.unraisablehook and clears it.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_WriteUnraisable(NativePyObject* obj);

    /// <summary>Runs pending signal handlers (main thread only); -1 with KeyboardInterrupt set after SIGINT.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyErr_CheckSignals();

    /// <summary>Simulates SIGINT: the next PyErr_CheckSignals on the main thread raises KeyboardInterrupt. No GIL needed.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_SetInterrupt();

    /// <returns>New reference, or NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyException_GetTraceback(NativePyObject* ex);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyException_SetTraceback(NativePyObject* ex, NativePyObject* tb);

    /// <returns>New reference, or NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyException_GetCause(NativePyObject* ex);

    /// <returns>New reference, or NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyException_GetContext(NativePyObject* ex);

    /// <summary>Steals ctx.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyException_SetContext(NativePyObject* ex, NativePyObject* ctx);

    /// <summary>Steals cause.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyException_SetCause(NativePyObject* ex, NativePyObject* cause);
}
