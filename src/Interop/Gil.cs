using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// The GIL, per thread. <see cref="Acquire"/> is reentrant and works on any thread, including
/// thread-pool threads that never touched Python. Each thread gets one Python thread state the
/// first time, kept for the thread's life, so later acquisitions are a bare
/// <c>PyEval_RestoreThread</c> instead of creating and deleting a thread state per call.
/// Guards are ref structs: the compiler refuses to keep one alive across an <c>await</c>.
/// </summary>
public static unsafe class Gil
{
    // This thread's nesting depth. > 0 means "this thread holds the GIL"; callbacks from Python
    // raise it on entry, so nested Acquire calls cost a thread-static increment.
    [ThreadStatic] private static int t_depth;
    // The thread state this thread parks in PyEval_SaveThread; null until first acquired.
    [ThreadStatic] private static PyThreadState* t_tstate;
    // The outermost hold was found already taken (Python called us, or a host holds it):
    // the last release must leave it held.
    [ThreadStatic] private static bool t_heldByCaller;

    // Threads inside an outermost Acquire (waiting for or holding the GIL). Finalization waits
    // for this to drain, because a thread that takes the GIL after Py_FinalizeEx starts is
    // killed with pthread_exit, which .NET does not survive.
    private static int s_active;

    /// <summary>True if this thread holds the GIL.</summary>
    public static bool IsHeld
    {
        get
        {
            if (t_depth > 0) return true;
            return PythonRuntime.State is PythonRuntime.RuntimeState.Running && CPython.PyGILState_Check() == 1;
        }
    }

    internal static bool HeldByUs
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => t_depth > 0;
    }

    /// <summary>Takes the GIL for this thread (reentrant). Dispose the guard on the same thread.</summary>
    /// <exception cref="InvalidOperationException">Python is not initialized, or is finalizing.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static GilGuard Acquire()
    {
        if (t_depth > 0)
        {
            t_depth++;
            return default;
        }
        AcquireOutermost();
        return default;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AcquireOutermost()
    {
        if (PythonRuntime.State is not PythonRuntime.RuntimeState.Running)
            PythonRuntime.ThrowNotRunning();
        Interlocked.Increment(ref s_active);
        if (PythonRuntime.State is not PythonRuntime.RuntimeState.Running)
        {
            Interlocked.Decrement(ref s_active);
            PythonRuntime.ThrowNotRunning();
        }
        if (CPython.PyGILState_Check() == 1)
        {
            t_heldByCaller = true;
        }
        else if (t_tstate != null)
        {
            CPython.PyEval_RestoreThread(t_tstate);
        }
        else
        {
            // First time on this thread: let CPython create and register a thread state. Its
            // gilstate counter stays at 1 for the life of the thread, so it is never deleted.
            CPython.PyGILState_Ensure();
            t_tstate = CPython.PyThreadState_Get();
        }
        t_depth = 1;
        DeferredRelease.DrainIfPending();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Exit()
    {
        int depth = t_depth;
        if (depth > 1)
        {
            t_depth = depth - 1;
            return;
        }
        ExitOutermost(depth);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ExitOutermost(int depth)
    {
        if (depth <= 0)
            throw new InvalidOperationException("GIL guard released more times than it was acquired on this thread.");
        t_depth = 0;
        if (t_heldByCaller)
            t_heldByCaller = false;
        else
            t_tstate = CPython.PyEval_SaveThread();
        Interlocked.Decrement(ref s_active);
    }

    /// <summary>
    /// Releases the GIL around blocking work (Py_BEGIN_ALLOW_THREADS) and takes it back on
    /// dispose. The thread must hold the GIL.
    /// </summary>
    public static GilReleased AllowThreads()
    {
        int depth = t_depth;
        if (depth == 0)
        {
            if (!IsHeld)
                throw new InvalidOperationException("AllowThreads: this thread does not hold the GIL.");
            // Held by a caller that did not go through Acquire (e.g. a host's own C code).
            depth = 1;
            Interlocked.Increment(ref s_active);
            t_heldByCaller = true;
        }
        var saved = new GilReleased(depth, t_heldByCaller, CPython.PyEval_SaveThread());
        t_depth = 0;
        t_heldByCaller = false;
        return saved;
    }

    internal static void Reenter(in GilReleased released)
    {
        // Still counted in s_active, so finalization has not started under us.
        CPython.PyEval_RestoreThread(released.ThreadState);
        t_depth = released.Depth;
        t_heldByCaller = released.HeldByCaller;
    }

    /// <summary>Entry of a callback from Python: the thread holds the GIL. Returns the depth to restore.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int EnterCallback()
    {
        int depth = t_depth;
        if (depth == 0)
        {
            t_heldByCaller = true;
            Interlocked.Increment(ref s_active);
        }
        t_depth = depth + 1;
        return depth;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExitCallback(int depth)
    {
        t_depth = depth;
        if (depth == 0)
        {
            t_heldByCaller = false;
            Interlocked.Decrement(ref s_active);
            DeferredRelease.DrainIfPending();
        }
    }

    /// <summary>Records that the initializing thread holds the GIL right after Py_Initialize.</summary>
    internal static void AdoptInitialHold()
    {
        t_depth = 1;
        t_heldByCaller = false;
        t_tstate = null;
        Interlocked.Increment(ref s_active);
    }

    internal static int ActiveThreads => Volatile.Read(ref s_active);

    /// <summary>Runs <paramref name="action"/> holding the GIL on the finalizing thread, bypassing the
    /// gate that now refuses everyone else. Only PythonRuntime.Shutdown calls this.</summary>
    internal static void ForFinalization(Action action)
    {
        if (t_tstate != null) CPython.PyEval_RestoreThread(t_tstate);
        else CPython.PyGILState_Ensure();
        t_depth = 1;
        try { action(); }
        finally
        {
            t_depth = 0;
            t_tstate = null; // freed by Py_FinalizeEx
        }
    }

    internal static int CurrentDepth => t_depth;
}

/// <summary>Holds the GIL until disposed. Cannot outlive the method or cross an await.</summary>
public ref struct GilGuard
{
    public readonly void Dispose() => Gil.Exit();
}

/// <summary>The GIL is released until disposed, when it is taken back.</summary>
public readonly unsafe ref struct GilReleased
{
    internal readonly int Depth;
    internal readonly bool HeldByCaller;
    internal readonly PyThreadState* ThreadState;

    internal GilReleased(int depth, bool heldByCaller, PyThreadState* threadState)
    {
        Depth = depth;
        HeldByCaller = heldByCaller;
        ThreadState = threadState;
    }

    public void Dispose() => Gil.Reenter(this);
}
