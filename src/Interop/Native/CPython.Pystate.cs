using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// pystate.h, ceval.h: thread states and the GIL.
//
// Hazard (3.9-3.13): a thread other than the finalizing one that tries to take the GIL
// (PyEval_RestoreThread, PyGILState_Ensure) after Py_FinalizeEx has started is ended with
// pthread_exit. On a .NET thread that is fatal to the process, so Gil never calls these once
// PythonRuntime has begun finalizing (see PythonRuntime.Finalize).
internal static unsafe partial class CPython
{
    /// <summary>Blocks until this thread holds the GIL; creates a thread state the first time a thread calls it.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial PyGILState_STATE PyGILState_Ensure();

    /// <summary>Deletes the thread state when its gilstate counter drops to zero.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyGILState_Release(PyGILState_STATE state);

    /// <returns>1 if this thread holds the GIL. Cheap: a thread-local read and a compare.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial int PyGILState_Check();

    /// <returns>This thread's thread state (borrowed); fatal error if none.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyThreadState* PyThreadState_Get();

    /// <summary>Releases the GIL. Requires the GIL.</summary>
    /// <returns>The thread state to hand back to <see cref="PyEval_RestoreThread"/>.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyThreadState* PyEval_SaveThread();

    /// <summary>Blocks until the GIL is taken for tstate. See the finalization hazard above.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyEval_RestoreThread(PyThreadState* tstate);

    /// <returns>Borrowed reference to the builtins dict of the current frame (or the interpreter's).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyEval_GetBuiltins();

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyObject* PyEval_EvalCode(PyObject* co, PyObject* globals, PyObject* locals);
}
