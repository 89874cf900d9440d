using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// The GIL, per thread. <see cref="Acquire"/> is reentrant and works on any thread, including
/// thread-pool threads that never touched Python. Each thread gets one Python thread state the
/// first time, kept while the thread lives, so later acquisitions are a bare
/// <c>PyEval_RestoreThread</c> instead of creating and deleting a thread state per call. When the
/// thread has exited (the GC notices), its thread state is freed by the next thread that takes the
/// GIL. Guards are ref structs: the compiler refuses to keep one alive across an <c>await</c>.
/// </summary>
public static unsafe class Gil
{
    /// <summary>How this thread's outermost hold was taken, so that its release undoes exactly that.</summary>
    internal enum HoldKind : byte
    {
        /// <summary>Restored our own thread state (PyEval_RestoreThread / SaveThread).</summary>
        Own,
        /// <summary>Found already held (Python called us, or a host holds it): leave it held.</summary>
        Caller,
        /// <summary>The thread has a thread state someone else created and will delete (a Python
        /// thread, a host's C code): borrowed for this hold with PyGILState_Ensure/Release, never kept.</summary>
        Foreign,
    }

    /// <summary>Everything this library knows about one thread's relation to Python.</summary>
    private sealed class ThreadGil
    {
        // > 0 means "this thread holds the GIL"; callbacks from Python raise it on entry, so a
        // nested Acquire is a field increment.
        public int Depth;
        // The thread state we created for this thread and park in PyEval_SaveThread; null until
        // first needed. Freed after the thread exits (see ThreadExitWatch).
        public PyThreadState* ThreadState;
        public HoldKind Hold;
        // 1 while the thread is inside an outermost hold, waiting for one, or inside AllowThreads.
        // Written with a plain store; PythonRuntime.Shutdown pairs it with a process-wide barrier
        // (an asymmetric Dekker handshake), so the hot path pays no interlocked instruction.
        public volatile int Active;
        // Stopwatch timestamps of this hold's start and of the wait before it; 0 unless a listener
        // enabled the GIL histograms when the hold began (see StartTimedHold).
        public long WaitStart, HoldStart;
    }

    /// <summary>
    /// Referenced only by its thread's thread-static slot, so it becomes garbage when the thread
    /// ends: its finalizer hands the thread's Python state to the next GIL holder for deletion and
    /// drops the thread from <see cref="s_threads"/>. The hot path never touches it.
    /// </summary>
    private sealed class ThreadExitWatch(ThreadGil gil)
    {
        ~ThreadExitWatch() => ThreadExited(gil);
    }

    [ThreadStatic] private static ThreadGil? t_gil;
    [ThreadStatic] private static ThreadExitWatch? t_watch;
    private static readonly HashSet<ThreadGil> s_threads = [];

    // Thread states of exited threads, deleted under the GIL by ReapDeadThreadStates.
    private static readonly ConcurrentQueue<nint> s_deadStates = new();
    // A helper state left bound by the previous reap on 3.12+ (see ReapDeadThreadStates).
    private static nint s_staleHelper;
    // The state Py_Initialize made for the initializing thread: Py_FinalizeEx needs it, never reaped.
    private static PyThreadState* s_initialState;

    // One byte set to 1 by an os.register_at_fork(after_in_child=...) hook: in a forked child the
    // CLR's own threads do not exist, so no .NET callback may run there. Native memory, so that
    // Python code sets it without running .NET code; a static readonly pointer, so reading it
    // costs one load.
    private static readonly byte* s_forkedChild = (byte*)NativeMemory.AllocZeroed(1);

    internal static byte* ForkedChildFlag => s_forkedChild;

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
        t_watch = new ThreadExitWatch(gil);
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
        // Timed only while a listener has enabled an instrument: two field reads otherwise.
        long waitStart = AsyncioRawDiagnostics.GilWait.Enabled || AsyncioRawDiagnostics.GilHold.Enabled ? Stopwatch.GetTimestamp() : 0;
        if (gil.ThreadState != null)
        {
            // Parked by our own SaveThread: nobody else can have restored it, because every way
            // Python re-enters .NET on this thread (our callbacks) raises Depth first.
            CPython.PyEval_RestoreThread(gil.ThreadState);
            gil.Hold = HoldKind.Own;
        }
        else
        {
            TakeWithoutOwnState(gil);
        }
        gil.Depth = 1;
        if (waitStart != 0) StartTimedHold(gil, waitStart);
        DeferredRelease.DrainIfPending();
    }

    /// <summary>A hold found already taken (<see cref="HoldKind.Caller"/>) was neither waited for nor
    /// will be released by us: not measured. Both measurements are recorded when the hold ends,
    /// after the GIL is released, so that no listener callback runs while this thread holds it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StartTimedHold(ThreadGil gil, long waitStart)
    {
        if (gil.Hold == HoldKind.Caller) return;
        gil.WaitStart = waitStart;
        gil.HoldStart = Stopwatch.GetTimestamp();
    }

    /// <summary>Records the hold that just ended (the GIL is released). Listener callbacks run here.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void EndTimedHold(ThreadGil gil)
    {
        long waitStart = gil.WaitStart, holdStart = gil.HoldStart, now = Stopwatch.GetTimestamp();
        gil.WaitStart = gil.HoldStart = 0;
        AsyncioRawDiagnostics.GilWait.Record(AsyncioRawDiagnostics.Seconds(waitStart, holdStart));
        AsyncioRawDiagnostics.GilHold.Record(AsyncioRawDiagnostics.Seconds(holdStart, now));
    }

    private static void TakeWithoutOwnState(ThreadGil gil)
    {
        if (CPython.PyGILState_Check() == 1)
        {
            gil.Hold = HoldKind.Caller;
        }
        else if (CPython.PyGILState_GetThisThreadState() != null)
        {
            // Not ours to keep: its owner deletes it (a Python thread when it ends), and a pointer
            // kept past that would be restored after free.
            CPython.PyGILState_Ensure();
            gil.Hold = HoldKind.Foreign;
        }
        else
        {
            // First time on this thread: let CPython create and bind a thread state. Its gilstate
            // counter stays at 1, so CPython never deletes it; we do, after the thread exits.
            CPython.PyGILState_Ensure();
            gil.ThreadState = CPython.PyThreadState_Get();
            gil.Hold = HoldKind.Own;
        }
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
        switch (gil.Hold)
        {
            case HoldKind.Own: gil.ThreadState = CPython.PyEval_SaveThread(); break;
            case HoldKind.Foreign: CPython.PyGILState_Release(PyGILState_STATE.PyGILState_UNLOCKED); break;
        }
        gil.Hold = HoldKind.Own;
        gil.Active = 0;
        if (gil.HoldStart != 0) EndTimedHold(gil);
    }

    /// <summary>
    /// Releases the GIL around blocking work (Py_BEGIN_ALLOW_THREADS) and takes it back on
    /// dispose. The thread must hold the GIL. While released, this thread counts as inside Python
    /// for <see cref="PythonRuntime.Shutdown"/> (which it may not call from here).
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
            return new GilReleased(0, HoldKind.Caller, CPython.PyEval_SaveThread());
        }
        var released = new GilReleased(gil.Depth, gil.Hold, CPython.PyEval_SaveThread());
        gil.Depth = 0;
        gil.Hold = HoldKind.Own;
        if (gil.HoldStart != 0) EndTimedHold(gil); // this hold ends here; Reenter starts the next
        return released;
    }

    internal static void Reenter(in GilReleased released)
    {
        // This thread stayed marked Active, so finalization cannot have started under us.
        var gil = Current;
        long waitStart = released.Depth > 0 && (AsyncioRawDiagnostics.GilWait.Enabled || AsyncioRawDiagnostics.GilHold.Enabled)
            ? Stopwatch.GetTimestamp() : 0;
        CPython.PyEval_RestoreThread(released.ThreadState);
        gil.Depth = released.Depth;
        gil.Hold = released.Hold;
        if (released.Depth == 0) gil.Active = 0; // back to the outside caller's own hold
        else if (waitStart != 0) StartTimedHold(gil, waitStart);
    }

    /// <summary>What <see cref="EnterCallback"/> returns when the callback must not run; the Python
    /// error is already set.</summary>
    internal const int CallbackRefused = -1;

    /// <summary>
    /// Entry of a callback from Python: the thread holds the GIL. Returns the depth to restore, or
    /// <see cref="CallbackRefused"/> with a Python RuntimeError set when .NET code cannot run here:
    /// in a forked child (the CLR's threads do not exist there), or on a thread that was outside
    /// Python when finalization began (the finalizing thread itself may still call .NET; others
    /// would be ended mid-frame by CPython when they next take the GIL).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int EnterCallback()
    {
        // First, before anything that might allocate or lock (thread-static set-up included).
        if (*s_forkedChild != 0) return RefuseCallback(forkedChild: true);
        var gil = Current;
        int depth = gil.Depth;
        if (depth == 0)
        {
            gil.Active = 1;
            // Paired with Shutdown's barrier as in EnterGate: it waits for us, or we see its state.
            if (PythonRuntime.State is not PythonRuntime.RuntimeState.Running && gil != s_finalizingThread)
            {
                gil.Active = 0;
                return RefuseCallback(forkedChild: false);
            }
            gil.Hold = HoldKind.Caller;
        }
        gil.Depth = depth + 1;
        return depth;
    }

    // In a forked child this is the only .NET code that runs, so it must be fully compiled in the
    // parent (see WarmUpRefusal): JIT-compiling or back-patching code in the child writes the
    // CLR's executable memory, which is mapped shared (W^X double mapping) and so corrupts the
    // parent's code. AggressiveOptimization: no tiering, no call counting.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int RefuseCallback(bool forkedChild)
    {
        // No allocation here: in a forked child a GC would wait for threads that do not exist.
        ReadOnlySpan<byte> message = forkedChild
            ? "AsyncioRaw: .NET code cannot run in a forked child process (the .NET runtime's threads do not exist after fork); use the 'spawn' or 'forkserver' start method, or exec\0"u8
            : "AsyncioRaw: .NET callback refused: Python is finalizing\0"u8;
        fixed (byte* p = message) CPython.PyErr_SetString(CPython.PyExc_RuntimeError, p);
        return CallbackRefused;
    }

    /// <summary>Runs the refusal path once in this (parent) process, so that a forked child finds
    /// it compiled and bound. Requires the GIL; leaves no error set.</summary>
    internal static void WarmUpRefusal()
    {
        RefuseCallback(forkedChild: true);
        CPython.PyErr_Clear();
        RefuseCallback(forkedChild: false);
        CPython.PyErr_Clear();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExitCallback(int depth)
    {
        // Still holding the GIL here at any depth: release what the finalizer queued. Draining only
        // at depth 0 starved a loop thread, which holds the GIL for the whole Asyncio.Run.
        DeferredRelease.DrainDecrefsIfPending();
        var gil = Current;
        gil.Depth = depth;
        if (depth == 0)
        {
            gil.Hold = HoldKind.Own;
            gil.Active = 0;
        }
    }

    // The thread that closed the gate for a host's exit (PythonRuntime's atexit hook): it goes on
    // running Python's finalization, and the .NET callbacks that reaches, as Shutdown's thread does.
    private static ThreadGil? s_finalizingThread;

    /// <summary>Lets this thread's callbacks from Python run after the gate closed. Only
    /// PythonRuntime's host-exit hook calls this, on the thread that finalizes Python.</summary>
    internal static void MarkFinalizingThread() => s_finalizingThread = Current;

    /// <summary>Records that the initializing thread holds the GIL right after Py_Initialize.</summary>
    internal static void AdoptInitialHold()
    {
        var gil = Current;
        gil.Depth = 1;
        gil.Hold = HoldKind.Own;
        gil.ThreadState = s_initialState = CPython.PyThreadState_Get();
        gil.Active = 1;
    }

    /// <summary>Threads other than the caller that are inside or waiting for the GIL, or inside
    /// AllowThreads. Only meaningful after the runtime state left Running (see <see cref="EnterGate"/>).</summary>
    internal static int ActiveThreadsAfterBarrier()
    {
        Interlocked.MemoryBarrierProcessWide();
        var self = t_gil;
        lock (s_threads) return s_threads.Count(g => g != self && g.Active != 0);
    }

    /// <summary>Thread states we created: those of threads still running, and those of exited
    /// threads (plus a left-over reaping helper) that wait to be deleted. For metrics only: the
    /// counts may be a moment out of date.</summary>
    internal static (long Live, long Exited) ThreadStateCounts()
    {
        long live = 0;
        lock (s_threads)
            foreach (var gil in s_threads)
                if (gil.ThreadState != null) live++;
        return (live, s_deadStates.Count + (Volatile.Read(ref s_staleHelper) != 0 ? 1 : 0));
    }

    internal static int CurrentDepth => t_gil?.Depth ?? 0;

    /// <summary>True while this thread is inside a hold, a callback, or an AllowThreads scope.</summary>
    internal static bool CurrentlyActive => t_gil is { } gil && (gil.Depth != 0 || gil.Active != 0);

    /// <summary>Runs <paramref name="action"/> holding the GIL on the finalizing thread, bypassing the
    /// gate that now refuses everyone else. Only PythonRuntime.Shutdown calls this.</summary>
    internal static void ForFinalization(Action action)
    {
        var gil = Current;
        if (gil.ThreadState != null)
        {
            CPython.PyEval_RestoreThread(gil.ThreadState);
            gil.Hold = HoldKind.Own;
        }
        else
        {
            TakeWithoutOwnState(gil);
        }
        gil.Depth = 1;
        try { action(); }
        finally
        {
            gil.Depth = 0;
            gil.Hold = HoldKind.Own;
            gil.ThreadState = null; // freed by Py_FinalizeEx
            gil.Active = 0;
            gil.WaitStart = gil.HoldStart = 0;
            s_staleHelper = 0;
            s_initialState = null;
            s_deadStates.Clear();
        }
    }

    // ---- Thread states of exited threads ------------------------------------------------------

    private static void ThreadExited(ThreadGil gil)
    {
        // The finalizer thread: no GIL, no waiting. The state is not current anywhere (its thread
        // ended outside any hold) and nobody will restore it again.
        lock (s_threads) s_threads.Remove(gil);
        var state = gil.ThreadState;
        if (state == null || state == s_initialState || gil.Depth != 0 ||
            PythonRuntime.State != PythonRuntime.RuntimeState.Running) return;
        gil.ThreadState = null;
        s_deadStates.Enqueue((nint)state);
        DeferredRelease.SignalDeadThreadStates();
    }

    internal static bool HasDeadThreadStates => !s_deadStates.IsEmpty;

    // Py_DEBUG builds of 3.12+ assert in unbind_gilstate_tstate when another thread's state is
    // deleted: there the states of exited threads are left to Py_FinalizeEx.
    private static int s_canReap = -1;

    /// <summary>
    /// Deletes the thread states of exited threads. Requires the GIL, held by this thread with a
    /// state that is its gilstate-bound one (true for every hold our Gil takes).
    /// </summary>
    internal static void ReapDeadThreadStates()
    {
        if (s_deadStates.IsEmpty) return;
        if (s_canReap < 0)
            s_canReap = PythonLibrary.Minor < 12 || !PythonRuntime.IsDebugBuild ? 1 : 0;
        if (s_canReap == 0) return;
        var current = CPython.PyThreadState_Get();
        if (CPython.PyGILState_GetThisThreadState() != current) return; // leave them for a plain hold

        var dead = new List<nint>();
        while (s_deadStates.TryDequeue(out var state)) dead.Add(state);
        // Clearing may run __del__, which may let another thread take the GIL and reap too: each
        // works on what it dequeued, and the stale helper changes hands atomically.
        if (Interlocked.Exchange(ref s_staleHelper, 0) is var stale and not 0) dead.Add(stale);
        // Clearing releases what the states reference and may run __del__: do it while this
        // thread's own binding is intact.
        foreach (var state in dead) CPython.PyThreadState_Clear((PyThreadState*)state);

        if (PythonLibrary.Minor < 12)
        {
            // 3.9-3.11 clear the gilstate slot only when it holds the deleted state.
            foreach (var state in dead) CPython.PyThreadState_Delete((PyThreadState*)state);
            return;
        }
        // 3.12+: deleting a gilstate-bound state clears *this* thread's slot. Make a helper state
        // current first, which moves this thread's binding to the helper (bind_gilstate_tstate
        // unbinds the previous holder), delete the dead ones, then swap back: our state, now
        // unbound, rebinds itself on activation. The helper, still marked bound, is deleted by the
        // next reap (or by Py_FinalizeEx), once it no longer matters whose slot that clears.
        var helper = CPython.PyThreadState_New(CPython.PyInterpreterState_Main());
        CPython.PyThreadState_Swap(helper);
        foreach (var state in dead) CPython.PyThreadState_Delete((PyThreadState*)state);
        bool slotCleared = CPython.PyGILState_GetThisThreadState() == null;
        CPython.PyThreadState_Swap(current);
        if (slotCleared)
        {
            // Reaped with the next batch; one left over by a concurrent reap joins that batch too.
            if (Interlocked.Exchange(ref s_staleHelper, (nint)helper) is var previous and not 0)
                s_deadStates.Enqueue(previous);
        }
        else
        {
            // Nothing cleared the slot, so rebinding ours just unbound the helper: free it now.
            CPython.PyThreadState_Clear(helper);
            CPython.PyThreadState_Delete(helper);
        }
    }
}

/// <summary>Holds the GIL until disposed. Cannot outlive the method or cross an await.</summary>
public ref struct GilGuard
{
    /// <summary>Releases this hold (the GIL itself only when it is the thread's outermost
    /// one).</summary>
    public readonly void Dispose() => Gil.Exit();
}

/// <summary>The GIL is released until disposed, when it is taken back.</summary>
public readonly unsafe ref struct GilReleased
{
    internal readonly int Depth;
    internal readonly Gil.HoldKind Hold;
    internal readonly PyThreadState* ThreadState;

    internal GilReleased(int depth, Gil.HoldKind hold, PyThreadState* threadState)
    {
        Depth = depth;
        Hold = hold;
        ThreadState = threadState;
    }

    /// <summary>Takes the GIL back for this thread, restoring the hold that was released.</summary>
    public void Dispose() => Gil.Reenter(this);
}
