using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>Attacks on the interpreter's life: shutting down from the wrong place, and .NET code
/// called while Python finalizes.</summary>
internal static class LifecycleAttacks
{
    /// <summary>Shutdown while this thread's GIL is released by AllowThreads: the guard's dispose
    /// used to take the GIL of a finalized interpreter ("Fatal Python error: gilstate_tss_set").</summary>
    [Attack("lifecycle.shutdown_in_allow_threads")]
    private static void ShutdownInAllowThreads()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using (Gil.Acquire())
        {
            using (Gil.AllowThreads())
                Outcome.Try("shutdown", () => PythonRuntime.Shutdown());
            Outcome.Report("initialized_after", PythonRuntime.IsInitialized);
        }
        // Python still works, and a proper shutdown afterwards succeeds.
        using (var f = Outcome.Define("def f(x):\n    return x * 3\n", "f"))
            Outcome.Report("call_after", f.Call<long, long>(14));
        Outcome.Try("shutdown_later", () => PythonRuntime.Shutdown());
    }

    /// <summary>The same with AllowThreads entered without a guard of ours (the GIL held since a
    /// callback from Python).</summary>
    [Attack("lifecycle.shutdown_in_callback")]
    private static void ShutdownInCallback()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        string? inner = null, innerReleased = null;
        using var plain = PyFunction.Create("plain", _ =>
        {
            try { PythonRuntime.Shutdown(); inner = "ok"; }
            catch (Exception e) { inner = Outcome.Describe(e); }
            return null;
        });
        using var released = PyFunction.Create("released", _ =>
        {
            using (Gil.AllowThreads())
            {
                try { PythonRuntime.Shutdown(); innerReleased = "ok"; }
                catch (Exception e) { innerReleased = Outcome.Describe(e); }
            }
            return 7L;
        });
        using (plain.Call()) { }
        Outcome.Report("in_callback", inner);
        Outcome.Report("released_result", released.Call<long>());
        Outcome.Report("in_callback_released", innerReleased);
        Outcome.Report("initialized_after", PythonRuntime.IsInitialized);
        Outcome.Try("shutdown_later", () => PythonRuntime.Shutdown());
    }

    /// <summary>A .NET function registered with atexit, and one called from a __del__ that runs
    /// during Py_FinalizeEx: each runs, or raises a clear Python error; never an internal one.</summary>
    [Attack("lifecycle.callbacks_in_finalization")]
    private static void CallbacksInFinalization()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        var seen = new List<string>();
        var atexitFn = PyFunction.Create<long, long>("at_exit", x => { lock (seen) seen.Add($"atexit:{x}"); return x; });
        var delFn = PyFunction.Create<string, string>("from_del", s => { lock (seen) seen.Add($"del:{s}"); return s; });
        using (var module = Py.Run("""
            import atexit, sys
            errors = []
            def at_exit_wrapper(fn):
                try:
                    fn(41)
                except BaseException as e:
                    errors.append(f'{type(e).__name__}: {e}')
                    sys.stdout.write(f'atexit_error={type(e).__name__}: {e}\n'); sys.stdout.flush()
            class Holder:
                def __init__(self, fn): self.fn = fn
                def __del__(self):
                    try:
                        self.fn('bye')
                    except BaseException as e:
                        sys.stdout.write(f'del_error={type(e).__name__}: {e}\n'); sys.stdout.flush()
            """))
        {
            using (var reg = module["atexit"].GetAttr("register")) using (reg.Call(module["at_exit_wrapper"], atexitFn)) { }
            // Kept alive by a module global until Py_FinalizeEx clears modules.
            using (var builtins = Py.Import("builtins"))
            using (var holder = module["Holder"].Call(delFn))
                builtins.SetAttr("_attack_holder", holder);
        }
        atexitFn.Dispose();
        delFn.Dispose();
        Outcome.Try("shutdown", () => PythonRuntime.Shutdown());
        lock (seen) Outcome.Report("seen", string.Join(",", seen));
    }

    /// <summary>A Python daemon thread that keeps calling a long .NET function (which releases
    /// the GIL inside) while the main thread shuts Python down: the .NET code must not be ended
    /// mid-frame by CPython; its finally blocks run and the lock it takes is released.</summary>
    [Attack("lifecycle.daemon_in_callback_at_shutdown")]
    private static void DaemonInCallbackAtShutdown()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        var gate = new object();
        long entered = 0, finallies = 0;
        using var work = PyFunction.Create<long, long>("work", x =>
        {
            Interlocked.Increment(ref entered);
            Monitor.Enter(gate);
            try
            {
                using (Gil.AllowThreads()) Thread.Sleep(5);
                return x + 1;
            }
            finally
            {
                Monitor.Exit(gate);
                Interlocked.Increment(ref finallies);
            }
        });
        using (var module = Py.Run("""
            import os, threading
            # The report is one unbuffered os.write, and the thread then ends quietly: a daemon
            # thread inside sys.stdout's (or, raising, sys.stderr's) buffered writer when
            # finalization freezes it keeps that writer's lock, and the final flush then aborts
            # the process ("_enter_buffered_busy: could not acquire lock ... possibly due to
            # daemon threads"), a CPython hazard of daemon threads, not one of ours.
            def loop(fn):
                try:
                    while True:
                        fn(1)
                except BaseException as e:
                    os.write(1, f'daemon_error={type(e).__name__}: {e}\n'.encode())
            def start(fn):
                t = threading.Thread(target=loop, args=(fn,), daemon=True)
                t.start()
            """))
        using (var start = module["start"])
            using (start.Call(work)) { }
        while (Interlocked.Read(ref entered) < 5) Thread.Sleep(1);
        Outcome.Try("shutdown", () => PythonRuntime.Shutdown(TimeSpan.FromSeconds(5)));
        Thread.Sleep(100);
        bool free = Monitor.TryEnter(gate, 2000);
        Outcome.Report("lock_free", free);
        Outcome.Report("balanced", Interlocked.Read(ref entered) - Interlocked.Read(ref finallies));
    }
}
