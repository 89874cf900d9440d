using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// pystate.h, ceval.h: thread states and the GIL.
//
// Hazard (3.9-3.13): a thread other than the finalizing one that tries to take the GIL
// (PyEval_RestoreThread, PyGILState_Ensure) after Py_FinalizeEx has started is ended with
// pthread_exit. On a .NET thread that is fatal to the process, so Gil never calls these once
// PythonRuntime has begun finalizing (see PythonRuntime.Finalize).
// Hazard (3.12+): PyThreadState_Delete of a thread state that PyGILState bound to its (now dead)
// thread clears the gilstate binding of the *calling* thread (unbind_gilstate_tstate clears the
// current thread's TSS slot whatever state it held). Gil.ReapDeadThreadStates works around it;
// on a Py_DEBUG build the same function asserts, so dead states are not freed there.

/// <summary>Opaque.</summary>
internal struct PyInterpreterState;

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
    internal static partial NativePyObject* PyEval_GetBuiltins();

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyEval_EvalCode(NativePyObject* co, NativePyObject* globals, NativePyObject* locals);

    /// <returns>The thread state PyGILState bound to this OS thread (borrowed), or NULL. Needs no GIL.</returns>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial PyThreadState* PyGILState_GetThisThreadState();

    /// <returns>The main interpreter (borrowed).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyInterpreterState* PyInterpreterState_Main();

    /// <summary>Creates a thread state bound to the calling OS thread, not current. Binds it to the
    /// thread's gilstate slot only if that slot is empty.</summary>
    /// <returns>The new thread state, owned by the caller (free with Clear + Delete).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyThreadState* PyThreadState_New(PyInterpreterState* interp);

    /// <summary>Releases the objects a thread state references (may run __del__). Requires the GIL;
    /// the state must not be running anything.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyThreadState_Clear(PyThreadState* tstate);

    /// <summary>Frees a cleared thread state. Requires the GIL; fatal error if tstate is current.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void PyThreadState_Delete(PyThreadState* tstate);

    /// <summary>Makes tstate current on this thread (the GIL moves with it). Requires the GIL.</summary>
    /// <returns>The previous current thread state (borrowed).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial PyThreadState* PyThreadState_Swap(PyThreadState* tstate);
}
