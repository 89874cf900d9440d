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
    /// <summary>Everything this library knows about one thread's relation to Python.</summary>
    private sealed class ThreadGil
    {
        // > 0 means "this thread holds the GIL"; callbacks from Python raise it on entry, so a
        // nested Acquire is a field increment.
        public int Depth;
        // The thread state this thread parks in PyEval_SaveThread; null until first acquired.
        public PyThreadState* ThreadState;
        // The outermost hold was found already taken (Python called us, or a host holds it):
        // the last release must leave it held.
        public bool HeldByCaller;
        // 1 while the thread is inside an outermost hold or waiting for one. Written with a plain
        // store; PythonRuntime.Shutdown pairs it with a process-wide barrier (an asymmetric
        // Dekker handshake), so the hot path pays no interlocked instruction.
        public volatile int Active;
    }

    [ThreadStatic] private static ThreadGil? t_gil;
    private static readonly List<ThreadGil> s_threads = [];

    private static ThreadGil Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => t_gil ?? Register();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ThreadGil Register()
    {
        var gil = new ThreadGil();
        lock (s_threads) s_threads.Add(gil);
        return t_gil = gil;
    }

    /// <summary>True if this thread holds the GIL.</summary>
    public static bool IsHeld
    {
        get
        {
            if (t_gil is { Depth: > 0 }) return true;
            return PythonRuntime.State is PythonRuntime.RuntimeState.Running && CPython.PyGILState_Check() == 1;
        }
    }

    internal static bool HeldByUs
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => t_gil is { Depth: > 0 };
    }

    /// <summary>Takes the GIL for this thread (reentrant). Dispose the guard on the same thread.</summary>
    /// <exception cref="InvalidOperationException">Python is not initialized, or is finalizing.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static GilGuard Acquire()
    {
        var gil = Current;
        if (gil.Depth > 0) gil.Depth++;
        else AcquireOutermost(gil);
        return default;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AcquireOutermost(ThreadGil gil)
    {
        EnterGate(gil);
        if (gil.ThreadState != null)
        {
            // Parked by our own SaveThread: nobody else can have restored it, because every way
            // Python re-enters .NET on this thread (our callbacks) raises Depth first.
            CPython.PyEval_RestoreThread(gil.ThreadState);
        }
        else if (CPython.PyGILState_Check() == 1)
        {
            gil.HeldByCaller = true;
        }
        else
        {
            // First time on this thread: let CPython create and register a thread state. Its
            // gilstate counter stays at 1 for the life of the thread, so it is never deleted.
            CPython.PyGILState_Ensure();
            gil.ThreadState = CPython.PyThreadState_Get();
        }
        gil.Depth = 1;
        DeferredRelease.DrainIfPending();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EnterGate(ThreadGil gil)
    {
        if (PythonRuntime.State is not PythonRuntime.RuntimeState.Running)
            PythonRuntime.ThrowNotRunning();
        gil.Active = 1;
        // Shutdown sets the state, then issues a process-wide barrier, then reads every Active:
        // either it sees our 1 and waits for us, or we see its state here.
        if (PythonRuntime.State is not PythonRuntime.RuntimeState.Running)
        {
            gil.Active = 0;
            PythonRuntime.ThrowNotRunning();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Exit()
    {
        var gil = Current;
        int depth = gil.Depth;
        if (depth > 1) gil.Depth = depth - 1;
        else ExitOutermost(gil, depth);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ExitOutermost(ThreadGil gil, int depth)
    {
        if (depth <= 0)
            throw new InvalidOperationException("GIL guard released more times than it was acquired on this thread.");
        gil.Depth = 0;
        if (gil.HeldByCaller)
            gil.HeldByCaller = false;
        else
            gil.ThreadState = CPython.PyEval_SaveThread();
        gil.Active = 0;
    }

    /// <summary>
    /// Releases the GIL around blocking work (Py_BEGIN_ALLOW_THREADS) and takes it back on
    /// dispose. The thread must hold the GIL.
    /// </summary>
    public static GilReleased AllowThreads()
    {
        var gil = Current;
        if (gil.Depth == 0)
        {
            // Held by a caller that did not go through Acquire (e.g. a host's own C code)?
            if (!IsHeld)
                throw new InvalidOperationException("AllowThreads: this thread does not hold the GIL.");
            gil.Active = 1; // keep finalization waiting until we are back
            return new GilReleased(0, heldByCaller: false, CPython.PyEval_SaveThread());
        }
        var released = new GilReleased(gil.Depth, gil.HeldByCaller, CPython.PyEval_SaveThread());
        gil.Depth = 0;
        gil.HeldByCaller = false;
        return released;
    }

    internal static void Reenter(in GilReleased released)
    {
        // This thread stayed marked Active, so finalization cannot have started under us.
        var gil = Current;
        CPython.PyEval_RestoreThread(released.ThreadState);
        gil.Depth = released.Depth;
        gil.HeldByCaller = released.HeldByCaller;
        if (released.Depth == 0) gil.Active = 0; // back to the outside caller's own hold
    }

    /// <summary>Entry of a callback from Python: the thread holds the GIL. Returns the depth to restore.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int EnterCallback()
    {
        var gil = Current;
        int depth = gil.Depth;
        if (depth == 0)
        {
            gil.HeldByCaller = true;
            gil.Active = 1;
        }
        gil.Depth = depth + 1;
        return depth;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExitCallback(int depth)
    {
        // Still holding the GIL here at any depth: release what the finalizer queued. Draining only
        // at depth 0 starved a loop thread, which holds the GIL for the whole Asyncio.Run.
        DeferredRelease.DrainIfPending();
        var gil = Current;
        gil.Depth = depth;
        if (depth == 0)
        {
            gil.HeldByCaller = false;
            gil.Active = 0;
        }
    }

    /// <summary>Records that the initializing thread holds the GIL right after Py_Initialize.</summary>
    internal static void AdoptInitialHold()
    {
        var gil = Current;
        gil.Depth = 1;
        gil.HeldByCaller = false;
        gil.ThreadState = null;
        gil.Active = 1;
    }

    /// <summary>Threads other than the caller that are inside or waiting for the GIL. Only
    /// meaningful after the runtime state left Running (see <see cref="EnterGate"/>).</summary>
    internal static int ActiveThreadsAfterBarrier()
    {
        Interlocked.MemoryBarrierProcessWide();
        var self = t_gil;
        lock (s_threads) return s_threads.Count(g => g != self && g.Active != 0);
    }

    internal static int CurrentDepth => t_gil?.Depth ?? 0;

    /// <summary>Runs <paramref name="action"/> holding the GIL on the finalizing thread, bypassing the
    /// gate that now refuses everyone else. Only PythonRuntime.Shutdown calls this.</summary>
    internal static void ForFinalization(Action action)
    {
        var gil = Current;
        if (gil.ThreadState != null) CPython.PyEval_RestoreThread(gil.ThreadState);
        else CPython.PyGILState_Ensure();
        gil.Depth = 1;
        try { action(); }
        finally
        {
            gil.Depth = 0;
            gil.ThreadState = null; // freed by Py_FinalizeEx
            gil.Active = 0;
        }
    }
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
