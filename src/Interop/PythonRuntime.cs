using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>The interpreter's life in this process: initialize once, finalize once.</summary>
public static unsafe class PythonRuntime
{
    internal enum RuntimeState { NotInitialized, Running, Finalizing, Finalized }

    private static readonly object s_lock = new();
    private static volatile RuntimeState s_state;
    private static int s_initThreadId;

    internal static RuntimeState State => s_state;

    /// <summary>True while the interpreter is initialized and not finalizing: Python may be used
    /// from any thread.</summary>
    public static bool IsInitialized => s_state == RuntimeState.Running;

    /// <summary>True when Python was already initialized by the host (we were loaded by Python)
    /// and this library must not finalize it.</summary>
    public static bool InitializedByHost { get; private set; }

    /// <summary>
    /// Loads libpython if needed and initializes the interpreter. Idempotent, thread-safe, and a
    /// no-op apart from bookkeeping when the host already initialized Python.
    /// </summary>
    /// <param name="installSignalHandlers">Install Python's SIGINT handler, so Ctrl-C raises
    /// KeyboardInterrupt in the event loop on the main thread (what a Python program does).</param>
    public static void Initialize(bool installSignalHandlers = true)
    {
        if (s_state == RuntimeState.Running) return;
        lock (s_lock)
        {
            switch (s_state)
            {
                case RuntimeState.Running: return;
                case RuntimeState.Finalizing or RuntimeState.Finalized:
                    throw new InvalidOperationException(
                        "Python was finalized in this process and cannot be initialized again " +
                        "(C extension modules such as _asyncio do not survive re-initialization).");
            }
            PythonLibrary.Load();
            if (CPython.Py_IsInitialized() != 0)
            {
                InitializedByHost = true;
                s_state = RuntimeState.Running;
            }
            else
            {
                CPython.Py_InitializeEx(installSignalHandlers ? 1 : 0);
                s_initThreadId = Environment.CurrentManagedThreadId;
                s_state = RuntimeState.Running;
                // Py_InitializeEx left this thread holding the GIL: account for it, then let it go
                // so any thread can take it.
                Gil.AdoptInitialHold();
                Gil.Exit();
            }
            using (Gil.Acquire())
            {
                ExceptionBridge.Initialize();
                InstallForkAndBuildChecks();
                if (InitializedByHost) RegisterHostExitGate();
            }
        }
    }

    /// <summary>How long the host's exit waits for .NET threads that are inside or waiting for the
    /// GIL (see <see cref="RegisterHostExitGate"/>).</summary>
    internal static readonly TimeSpan HostExitWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// When Python hosts us nobody calls <see cref="Shutdown"/>, yet the interpreter still
    /// finalizes: a .NET thread that takes the GIL after that has begun is ended mid-frame by
    /// CPython (3.9-3.13, through managed frames) or blocked forever (3.14+). An <c>atexit</c>
    /// handler, which runs while Python is still whole, closes the gate as Shutdown does: from then
    /// on <see cref="Gil.Acquire"/> throws and callbacks from other threads are refused. It then
    /// waits, with the GIL released, for the threads already inside or waiting for the GIL to
    /// leave. Requires the GIL.
    /// </summary>
    private static void RegisterHostExitGate()
    {
        using var atexit = Py.Import("atexit");
        using var hook = Callbacks.NoArgs(new HostExitHook()).MoveToObject();
        using (atexit.CallMethod("register", hook)) { }
    }

    private sealed class HostExitHook : NoArgsCallback
    {
        internal override void Invoke() => CloseGateForHostExit(HostExitWait);
    }

    /// <summary>The atexit side of <see cref="RegisterHostExitGate"/>: on the finalizing thread,
    /// inside a callback from Python (so with the GIL).</summary>
    private static void CloseGateForHostExit(TimeSpan timeout)
    {
        // No lock: Initialize holds s_lock while it takes the GIL, which this thread holds. In a
        // hosted process nothing else moves the state out of Running (Shutdown refuses).
        if (s_state != RuntimeState.Running) return;
        s_state = RuntimeState.Finalizing;
        // This thread keeps calling .NET while Python finalizes (later atexit handlers, __del__),
        // as the thread that runs Py_FinalizeEx does in Shutdown.
        Gil.MarkFinalizingThread();
        int active;
        var deadline = DateTime.UtcNow + timeout;
        using (Gil.AllowThreads())
        {
            while ((active = Gil.ActiveThreadsAfterBarrier()) > 0 && DateTime.UtcNow < deadline)
                Thread.Sleep(1);
        }
        if (active > 0)
            CallbackFailure.Report("letting the host finalize Python",
                new TimeoutException($"{active} .NET thread(s) still hold or wait for the GIL after {timeout.TotalSeconds:0.#} s; finalizing without them"));
        // Leaving the callback releases what the .NET GC queued, while Python still runs __del__.
    }

    /// <summary>True on a Py_DEBUG (reference-debugging) build of CPython.</summary>
    internal static bool IsDebugBuild { get; private set; }

    // A forked child has only the forking thread: the CLR's GC, finalizer and signal-handling
    // threads are gone, so .NET code cannot run there safely. And the CLR's signal handlers,
    // inherited by the child, re-send a signal the child receives (SIGTERM from Pool.terminate)
    // to the process id the CLR cached at start-up, which is the parent's (seen with strace:
    // the child calls kill(parent, SIGTERM)): the parent died instead of the child. The child
    // hook, pure Python, flags the child (our callbacks then raise RuntimeError there) and gives
    // the signals the CLR handles their default action.
    private const string ForkHookSource = """
        def install(flag):
            import os, signal, sys
            names = ('SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGCHLD', 'SIGCONT', 'SIGWINCH',
                     'SIGTTIN', 'SIGTTOU', 'SIGUSR1', 'SIGUSR2')
            def after_in_child():
                flag[0] = 1
                for name in names:
                    signum = getattr(signal, name, None)
                    try:
                        # None: a handler Python did not install, i.e. the CLR's.
                        if signum is not None and signal.getsignal(signum) is None:
                            signal.signal(signum, signal.SIG_DFL)
                    except (OSError, ValueError, RuntimeError):
                        pass
            os.register_at_fork(after_in_child=after_in_child)
            return hasattr(sys, 'gettotalrefcount')
        """;

    /// <summary>Requires the GIL.</summary>
    private static void InstallForkAndBuildChecks()
    {
        using var globals = Py.Run(ForkHookSource, fileName: "<asyncioraw fork hook>");
        using var install = globals["install"];
        // The view over Gil's flag lives as long as the hook (the interpreter's life); the flag's
        // memory is never freed.
        using var flag = PyObject.StealOrThrow(CPython.PyMemoryView_FromMemory(Gil.ForkedChildFlag, 1, CPython.PyBUF_WRITE));
        IsDebugBuild = install.Call<PyObject, bool>(flag);
        Gil.WarmUpRefusal();
    }

    /// <summary>
    /// Finalizes the interpreter. Must be called on the thread that initialized it, after event
    /// loops are stopped. Waits up to <paramref name="timeout"/> for other threads to leave the
    /// GIL; Python objects still referenced from .NET become inert (their release is a no-op).
    /// </summary>
    public static void Shutdown(TimeSpan? timeout = null)
    {
        lock (s_lock)
        {
            if (s_state != RuntimeState.Running) return;
            if (InitializedByHost)
                throw new InvalidOperationException("Python was initialized by the host process; only the host can finalize it.");
            if (Environment.CurrentManagedThreadId != s_initThreadId)
                throw new InvalidOperationException(
                    $"Python must be finalized on the thread that initialized it (managed thread {s_initThreadId}).");
            if (Gil.CurrentDepth != 0)
                throw new InvalidOperationException("Shutdown cannot be called while this thread holds the GIL.");
            // Inside Gil.AllowThreads (perhaps within a callback from Python): the scope's dispose
            // would take the GIL of a finalized interpreter, and Python frames below us would
            // resume in it.
            if (Gil.CurrentlyActive)
                throw new InvalidOperationException(
                    "Shutdown cannot be called inside Gil.AllowThreads or a callback from Python; call it after leaving them.");

            // From here on no thread may start taking the GIL (see the hazard in CPython.Pystate.cs).
            s_state = RuntimeState.Finalizing;
            var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
            int active;
            while ((active = Gil.ActiveThreadsAfterBarrier()) > 0)
            {
                if (DateTime.UtcNow > deadline)
                {
                    s_state = RuntimeState.Running;
                    throw new TimeoutException(
                        $"{active} thread(s) still hold or wait for the GIL; stop event loops and Python work before Shutdown.");
                }
                Thread.Sleep(1);
            }
            // Take the GIL directly (the gate above now refuses Gil.Acquire).
            // .NET functions stay callable on this thread while Py_FinalizeEx runs atexit handlers
            // and __del__ methods (other threads are refused by the callback gate), so the bridge's
            // cached objects are dropped only afterwards: their release is then a no-op.
            Gil.ForFinalization(static () =>
            {
                DeferredRelease.Drain();
                CPython.Py_FinalizeEx();
            });
            DeferredRelease.Discard();
            s_state = RuntimeState.Finalized;
            ObjectFinalizationHooks.RunAfterFinalize();
        }
    }

    internal static void ThrowNotRunning() => throw (s_state switch
    {
        RuntimeState.NotInitialized => new InvalidOperationException(
            "Python is not initialized: call PythonRuntime.Initialize() first."),
        RuntimeState.Finalizing => new InvalidOperationException("Python is finalizing: .NET code can no longer call into it."),
        _ => new InvalidOperationException("Python has been finalized in this process."),
    });
}

/// <summary>Code that drops cached objects once the interpreter is gone (releasing them is then a
/// no-op): after Py_FinalizeEx, so that .NET code Python calls while it finalizes still finds them.</summary>
internal static class ObjectFinalizationHooks
{
    private static readonly List<Action> s_hooks = [];

    internal static void Register(Action hook)
    {
        lock (s_hooks) s_hooks.Add(hook);
    }

    internal static void RunAfterFinalize()
    {
        Action[] hooks;
        lock (s_hooks) hooks = [.. s_hooks];
        foreach (var hook in hooks) hook();
    }
}
