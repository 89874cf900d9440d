using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// pyerrors.h. All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>Borrowed reference to the current exception type, or NULL.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial PyObject* PyErr_Occurred();

    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_Clear();

    /// <summary>Deprecated in 3.12 (use PyErr_GetRaisedException); the only way before it.
    /// Each out value is a new reference or NULL, possibly unnormalized.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_Fetch(PyObject** ptype, PyObject** pvalue, PyObject** ptraceback);

    /// <summary>Steals all three references.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_Restore(PyObject* type, PyObject* value, PyObject* traceback);

    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_NormalizeException(PyObject** exc, PyObject** val, PyObject** tb);

    /// <returns>New reference to the normalized exception (traceback attached), or NULL; clears the error.</returns>
    [LibraryImport(Libraries.Python), Since(3, 12)]
    internal static partial PyObject* PyErr_GetRaisedException();

    /// <summary>Steals exc.</summary>
    [LibraryImport(Libraries.Python), Since(3, 12)]
    internal static partial void PyErr_SetRaisedException(PyObject* exc);

    /// <summary>Does not steal type or value. A tuple value is unpacked into arguments.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_SetObject(PyObject* type, PyObject* value);

    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_SetString(PyObject* type, byte* message);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyErr_GivenExceptionMatches(PyObject* given, PyObject* exc);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyErr_ExceptionMatches(PyObject* exc);

    /// <summary>Prints the current exception through sys.unraisablehook and clears it.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_WriteUnraisable(PyObject* obj);

    /// <summary>Runs pending signal handlers (main thread only); -1 with KeyboardInterrupt set after SIGINT.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyErr_CheckSignals();

    /// <summary>Simulates SIGINT: the next PyErr_CheckSignals on the main thread raises KeyboardInterrupt. No GIL needed.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyErr_SetInterrupt();

    /// <returns>New reference, or NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyException_GetTraceback(PyObject* ex);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyException_SetTraceback(PyObject* ex, PyObject* tb);

    /// <returns>New reference, or NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyException_GetCause(PyObject* ex);

    /// <returns>New reference, or NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyException_GetContext(PyObject* ex);

    /// <summary>Steals ctx.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyException_SetContext(PyObject* ex, PyObject* ctx);

    /// <summary>Steals cause.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyException_SetCause(PyObject* ex, PyObject* cause);
}
