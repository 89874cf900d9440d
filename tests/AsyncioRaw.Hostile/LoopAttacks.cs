using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>
/// Attacks on the life of event loops (issue 8): work racing a loop's close, wrappers outliving
/// their loop, loops stopped by Python, first use from several threads at once, waits while
/// holding the GIL, blocking on the loop thread, Ctrl-C after Asyncio.Run, leaked loops.
/// </summary>
internal static partial class LoopAttacks
{
    private const string Coroutines = """
        import asyncio

        async def echo(x):
            await asyncio.sleep(0)
            return x

        async def sleep(seconds):
            await asyncio.sleep(seconds)
            return seconds
        """;

    private static void Init() => PythonRuntime.Initialize(installSignalHandlers: false);

    /// <summary>The outcome of a task after at most <paramref name="ms"/>: its value, "hang", or the exception.</summary>
    /// <summary>Posts loop work through the internal queue (EventLoop.Post is not public): a loop that
    /// is gone abandons the work, and the exception it is abandoned with is thrown here.</summary>
    internal static void Post(EventLoop loop, Action action)
    {
        Exception? abandoned = null;
        loop.PostLoopWork(_ => action(), (_, e) => abandoned = e, null);
        if (abandoned != null) throw abandoned;
    }

    internal static string Settle<T>(Task<T> task, int ms)
    {
        if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(ms)) return "hang";
        try { return $"ok: {task.GetAwaiter().GetResult()}"; }
        catch (Exception e) { return Outcome.Describe(e); }
    }

    internal static string Settle(Task task, int ms)
    {
        if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(ms)) return "hang";
        try { task.GetAwaiter().GetResult(); return "ok"; }
        catch (Exception e) { return Outcome.Describe(e); }
    }

    /// <summary>Runs <paramref name="start"/> (which may throw at once) and reports how its task ended
    /// and how long that took.</summary>
    private static void ReportTimed<T>(string name, Func<Task<T>> start, int ms = 2000)
    {
        var sw = Stopwatch.StartNew();
        string outcome;
        try { outcome = Settle(start(), ms); }
        catch (Exception e) { outcome = Outcome.Describe(e); }
        Outcome.Report(name, outcome);
        Outcome.Report(name + ".ms", sw.ElapsedMilliseconds);
    }

    // ---- 1. Work posted to a loop that then closes ----

    /// <summary>Three threads await coroutines on a loop (ToTask and CallAsync) while it is disposed,
    /// round after round. Every task must end: completed, canceled, or failed naming the loop.</summary>
    [Attack("loop.close_race")]
    private static void CloseRace(string[] args)
    {
        Init();
        int seconds = args.Length > 0 ? int.Parse(args[0]) : 5;
        using var echo = Outcome.Define(Coroutines, "echo");
        var tasks = new ConcurrentQueue<Task>();
        var syncErrors = new ConcurrentDictionary<string, int>();
        var sw = Stopwatch.StartNew();
        int rounds = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            rounds++;
            var lt = new EventLoopThread();
            var loop = lt.Loop;
            var stop = new ManualResetEventSlim();
            var workers = Enumerable.Range(0, 3).Select(i => new Thread(() =>
            {
                while (!stop.IsSet)
                {
                    try
                    {
                        Task<long> a, b;
                        using (var c = echo.Call(1L)) tasks.Enqueue(a = PyAwaitable.ToTask<long>(c, loop));
                        tasks.Enqueue(b = lt.CallAsync<long, long>(echo, 2L));
                        // Keep the race, not a flood: one pair in flight per thread (a flood of
                        // thousands of queued items only makes the loop's shutdown slow).
                        Task.WaitAny([a, b], 20);
                    }
                    catch (Exception e)
                    {
                        syncErrors.AddOrUpdate(e.GetType().Name, 1, (_, n) => n + 1);
                    }
                }
            }) { IsBackground = true }).ToList();
            workers.ForEach(w => w.Start());
            Thread.Sleep(20 + rounds % 5 * 10);
            Outcome.Within(Task.Run(lt.Dispose), 10_000, $"disposing the loop thread in round {rounds}");
            Thread.Sleep(20);
            stop.Set();
            workers.ForEach(w => w.Join());
        }
        Outcome.Report("rounds", rounds);
        Outcome.Report("tasks", tasks.Count);
        foreach (var (type, n) in syncErrors) Outcome.Report($"thrown.{type}", n);
        var all = tasks.ToArray();
        ((IAsyncResult)Task.WhenAll(all)).AsyncWaitHandle.WaitOne(3000);
        int ok = 0, canceled = 0, pending = 0, unexpected = 0;
        var faults = new Dictionary<string, int>();
        string? firstUnexpected = null;
        foreach (var t in all)
        {
            if (!t.IsCompleted) pending++;
            else if (t.IsCompletedSuccessfully) ok++;
            else if (t.IsCanceled) canceled++;
            else
            {
                var e = t.Exception!.InnerExceptions[0];
                var name = e.GetType().Name;
                faults[name] = faults.GetValueOrDefault(name) + 1;
                if (e is not (ObjectDisposedException or InvalidOperationException))
                {
                    unexpected++;
                    firstUnexpected ??= Outcome.Describe(e);
                }
            }
        }
        foreach (var (type, n) in faults) Outcome.Report($"faulted.{type}", n);
        Outcome.Report("completed", ok);
        Outcome.Report("canceled", canceled);
        Outcome.Report("pending", pending);
        Outcome.Report("unexpected", unexpected);
        if (firstUnexpected != null) Outcome.Report("first_unexpected", firstUnexpected);
    }

    // ---- 2. A loop wrapper outliving its loop ----

    /// <summary>The EventLoop of a plain Python asyncio.run, kept after that run returned and the
    /// loop object was collected (and its memory reused).</summary>
    private static EventLoop StaleLoop()
    {
        Init();
        EventLoop? saved = null;
        using var grab = PyFunction.CreateAsync<long, long>("grab", x =>
        {
            saved = TaskLocals.Current!.Loop;
            return Task.FromResult(x);
        });
        using var run = Outcome.Define("""
            import asyncio, gc

            junk = []

            def run(grab):
                async def main():
                    return await grab(1)
                r = asyncio.run(main())
                gc.collect()
                # Reuse the freed memory, so a dangling pointer points at something else.
                junk.extend([{} for _ in range(20000)])
                junk.extend([[None] * 8 for _ in range(20000)])
                junk.extend([object() for _ in range(20000)])
                return r
            """, "run");
        using (run.Call(grab)) { }
        Outcome.Report("saved.is_closed", saved!.IsClosed);
        return saved;
    }

    [Attack("loop.stale.loop_property")]
    private static void StaleLoopProperty()
    {
        var saved = StaleLoop();
        Outcome.Try("loop_property", () =>
        {
            using var loop = saved.Loop;
            Outcome.Report("loop_repr", loop.Repr());
        });
    }

    [Attack("loop.stale.to_task")]
    private static void StaleToTask()
    {
        var saved = StaleLoop();
        using var sleep = Outcome.Define(Coroutines, "sleep");
        ReportTimed("to_task", () =>
        {
            using var c = sleep.Call(0.01);
            return PyAwaitable.ToTask<double>(c, saved);
        });
    }

    [Attack("loop.stale.from_task")]
    private static void StaleFromTask()
    {
        var saved = StaleLoop();
        var pending = new TaskCompletionSource<long>();
        Outcome.Try("from_task", () =>
        {
            using var future = PyFuture.FromTask(pending.Task, saved);
            Outcome.Report("future_repr", future.Repr());
        });
        pending.SetResult(1);
    }

    [Attack("loop.stale.post")]
    private static void StalePost()
    {
        var saved = StaleLoop();
        var ran = new TaskCompletionSource();
        Outcome.Try("post", () => Post(saved, () => ran.TrySetResult()));
        Outcome.Report("post_ran", Settle(ran.Task, 1000));
    }

    // ---- 4. Operations on a loop that is gone or stopped ----

    /// <summary>Every way of submitting work to a disposed EventLoopThread's loop.</summary>
    [Attack("loop.disposed.submit")]
    private static void DisposedSubmit()
    {
        Init();
        using var echo = Outcome.Define(Coroutines, "echo");
        using var sleep = Outcome.Define(Coroutines, "sleep");
        var lt = new EventLoopThread();
        var loop = lt.Loop;
        lt.Dispose();
        ReportTimed("to_task", () =>
        {
            using var c = echo.Call(1L);
            return PyAwaitable.ToTask<long>(c, loop);
        });
        ReportTimed("call_async", () => lt.CallAsync<long, long>(echo, 1L));
        ReportTimed("run_async", () => lt.RunAsync(_ => Task.FromResult(1)));
        var ran = new TaskCompletionSource();
        Outcome.Try("post", () => Post(loop, () => ran.TrySetResult()));
        Outcome.Report("post_ran", Settle(ran.Task, 500));
        using var cts = new CancellationTokenSource();
        ReportTimed("to_task_token_cancelled", () =>
        {
            using var c = sleep.Call(10.0);
            var t = PyAwaitable.ToTask<double>(c, loop, cts.Token);
            cts.CancelAfter(100);
            return t;
        });
        // Last: this one touches the loop object itself.
        var pending = new TaskCompletionSource<long>();
        Outcome.Try("from_task", () => PyFuture.FromTask(pending.Task, loop).Dispose());
    }

    /// <summary>A coroutine run by CallAsync stops the loop (loop.stop()); then more work is submitted.</summary>
    [Attack("loop.stopped.by_stop")]
    private static void StoppedByStop()
    {
        Init();
        using var stopper = Outcome.Define("""
            import asyncio

            async def stopper():
                asyncio.get_running_loop().stop()
                await asyncio.sleep(10)
            """, "stopper");
        using var echo = Outcome.Define(Coroutines, "echo");
        var lt = new EventLoopThread();
        ReportTimed("stopping_call", () => lt.CallAsync<PyObject>(stopper));
        ReportAfterStop(lt, echo);
    }

    /// <summary>sys.exit() inside a coroutine run by CallAsync; then more work is submitted.</summary>
    [Attack("loop.stopped.by_sys_exit")]
    private static void StoppedBySysExit()
    {
        Init();
        using var exiter = Outcome.Define("""
            import asyncio, sys

            async def exiter():
                await asyncio.sleep(0)
                sys.exit(3)
            """, "exiter");
        using var echo = Outcome.Define(Coroutines, "echo");
        var lt = new EventLoopThread();
        ReportTimed("exiting_call", () => lt.CallAsync<PyObject>(exiter));
        ReportAfterStop(lt, echo);
    }

    /// <summary>A loop factory whose run_forever raises: the thread's loop never runs.</summary>
    [Attack("loop.stopped.run_forever_raises")]
    private static void RunForeverRaises()
    {
        Init();
        using var loopType = Outcome.Define("""
            import asyncio

            class BrokenLoop(asyncio.SelectorEventLoop):
                def run_forever(self):
                    raise RuntimeError('run_forever refuses')
            """, "BrokenLoop");
        using var echo = Outcome.Define(Coroutines, "echo");
        EventLoopThread? lt = null;
        Outcome.Try("construct", () => lt = new EventLoopThread(loopFactory: () => loopType.Call()));
        if (lt != null) ReportAfterStop(lt, echo);
    }

    private static void ReportAfterStop(EventLoopThread lt, PyObject echo)
    {
        Thread.Sleep(200);
        Outcome.Report("is_closed", lt.Loop.IsClosed);
        ReportTimed("after.call_async", () => lt.CallAsync<long, long>(echo, 1L));
        ReportTimed("after.to_task", () =>
        {
            using var c = echo.Call(1L);
            return PyAwaitable.ToTask<long>(c, lt.Loop);
        });
        ReportTimed("after.run_async", () => lt.RunAsync(_ => Task.FromResult(1)));
        ReportTimed("dispose", () => lt.DisposeAsync().AsTask().ContinueWith(t => t.IsCompletedSuccessfully ? "ok" : Outcome.Describe(t.Exception!)));
    }

    // ---- 5. First use from several threads at once ----

    /// <summary>Four threads make their first PyFunction at the same moment in a fresh process.</summary>
    [Attack("loop.first_use.function")]
    private static void FirstUseFunction()
    {
        Init();
        using var barrier = new Barrier(4);
        var made = Enumerable.Range(0, 4).Select(i => Task.Factory.StartNew(() =>
        {
            barrier.SignalAndWait();
            using var f = PyFunction.Create<long, long>($"f{i}", x => x + i);
            return f.Call<long, long>(1);
        }, TaskCreationOptions.LongRunning)).ToArray();
        Outcome.Within(Task.WhenAll(made), 10_000, "four threads making their first PyFunction");
        Outcome.Report("functions", string.Join(",", made.Select(t => t.Result)));
    }

    /// <summary>Four loops shut down at once, from their own threads, on the first use of the
    /// shutdown helper (a Lazy whose factory runs Python code under the Lazy's lock).</summary>
    [Attack("loop.first_use.shutdown")]
    private static void FirstUseShutdown()
    {
        Init();
        var loops = Enumerable.Range(0, 4).Select(_ => new EventLoopThread()).ToArray();
        SlowBuiltins();
        using var barrier = new Barrier(loops.Length);
        var disposed = loops.Select(lt => Task.Factory.StartNew(() =>
        {
            barrier.SignalAndWait();
            lt.Dispose();
        }, TaskCreationOptions.LongRunning)).ToArray();
        Outcome.Within(Task.WhenAll(disposed), 10_000, "four loops shutting down at once");
        Outcome.Report("disposed", disposed.Length);
    }

    /// <summary>Four threads holding the GIL (as a .NET function called by Python does) turn an
    /// IAsyncEnumerable into Python at once: first use of the iterator type, another Lazy
    /// running Python code under its lock.</summary>
    [Attack("loop.first_use.stream")]
    private static void FirstUseStream()
    {
        Init();
        using (PyFunction.Create<long, long>("warm", x => x)) { } // the bridge's own first use is loop.first_use.function
        SlowBuiltins();
        using var barrier = new Barrier(4);
        var made = Enumerable.Range(0, 4).Select(i => Task.Factory.StartNew(() =>
        {
            barrier.SignalAndWait();
            using var gil = Gil.Acquire();
            using var it = PyAsyncStreams.ToPython(Numbers(3));
            return it.TypeName;
        }, TaskCreationOptions.LongRunning)).ToArray();
        Outcome.Within(Task.WhenAll(made), 10_000, "four threads making their first Python async iterator");
        Outcome.Report("streams", string.Join(",", made.Select(t => t.Result)));
    }

    internal static async IAsyncEnumerable<long> Numbers(int n)
    {
        for (long i = 0; i < n; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    /// <summary>
    /// An import hook and a class-building hook that block for a moment, releasing the GIL (as a
    /// profiler, a lazy importer or any hook doing I/O may): Python code run under a managed lock
    /// then meets, every time, another thread that waits for that lock while holding the GIL.
    /// </summary>
    private static void SlowBuiltins()
    {
        using (Py.Run("""
            import builtins, time

            _import, _build_class = builtins.__import__, builtins.__build_class__

            def slow_import(*args, **kwargs):
                time.sleep(0.05)
                return _import(*args, **kwargs)

            def slow_build_class(*args, **kwargs):
                time.sleep(0.05)
                return _build_class(*args, **kwargs)

            builtins.__import__ = slow_import
            builtins.__build_class__ = slow_build_class
            """)) { }
    }

    // ---- 6. Waiting while holding the GIL ----

    [Attack("gil.new_loop_thread")]
    private static void NewLoopThreadUnderGil()
    {
        Init();
        var made = Task.Factory.StartNew(() =>
        {
            EventLoopThread lt;
            using (Gil.Acquire()) lt = new EventLoopThread();
            lt.Dispose();
            return "made and disposed";
        }, TaskCreationOptions.LongRunning);
        Outcome.Report("new_under_gil", Settle(made, 5000));
        if (!made.IsCompleted) Outcome.Hang("new EventLoopThread() while holding the GIL");
    }

    [Attack("gil.dispose_loop_thread")]
    private static void DisposeLoopThreadUnderGil()
    {
        Init();
        var lt = new EventLoopThread();
        var disposed = Task.Factory.StartNew(() =>
        {
            using (Gil.Acquire()) lt.Dispose();
            return "disposed";
        }, TaskCreationOptions.LongRunning);
        Outcome.Report("dispose_under_gil", Settle(disposed, 5000));
        if (!disposed.IsCompleted) Outcome.Hang("EventLoopThread.Dispose() while holding the GIL");
    }

    [Attack("gil.loop_thread_in_run")]
    private static void LoopThreadInsideRun()
    {
        Init();
        using var echo = Outcome.Define(Coroutines, "echo");
        var run = Task.Factory.StartNew(() => Asyncio.Run(async _ =>
        {
            await Task.Yield();
            var lt = new EventLoopThread();
            var r = await lt.CallAsync<long, long>(echo, 5L);
            lt.Dispose();
            return r;
        }), TaskCreationOptions.LongRunning);
        Outcome.Report("loop_thread_in_run", Settle(run, 5000));
        if (!run.IsCompleted) Outcome.Hang("an EventLoopThread made and disposed inside Asyncio.Run's main");
    }

    /// <summary>A synchronous .NET function that Python calls on loop A blocks on loop B's work.</summary>
    [Attack("gil.result_of_other_loop")]
    private static void ResultOfOtherLoop()
    {
        Init();
        using var echo = Outcome.Define(Coroutines, "echo");
        using var caller = Outcome.Define("def caller(f):\n    return f(20)\n", "caller");
        var a = new EventLoopThread("loop A");
        var b = new EventLoopThread("loop B");
        using var blocking = PyFunction.Create<long, long>("blocking", x => b.CallAsync<long, long>(echo, x).Result + 1);
        var r = a.CallAsync<long>(caller, [blocking]);
        Outcome.Report("result", Settle(r, 5000));
        if (!r.IsCompleted) Outcome.Hang("loop A's thread waiting for loop B's task inside a call from Python");
        a.Dispose();
        b.Dispose();
    }

    /// <summary>
    /// A cancellation callback that needs the GIL (the wake-up of a loop without add_reader) runs
    /// on the cancelling thread while the loop thread, holding the GIL, disposes that very
    /// registration as the coroutine completes.
    /// </summary>
    [Attack("gil.registration_dispose")]
    private static void RegistrationDispose()
    {
        Init();
        using var loopType = Outcome.Define("""
            import asyncio, sys

            class NoReaderLoop(asyncio.SelectorEventLoop):
                def add_reader(self, fd, callback, *args):
                    raise NotImplementedError('no add_reader here')

            sys.setswitchinterval(100)  # the busy coroutine keeps the GIL while others wait
            """, "NoReaderLoop");
        using var busy = Outcome.Define("""
            import asyncio, time

            async def busy():
                await asyncio.sleep(0.05)
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < 0.6:
                    pass
                return 1
            """, "busy");
        var lt = new EventLoopThread(loopFactory: () => loopType.Call());
        using var cts = new CancellationTokenSource();
        Task<long> awaited;
        using (var c = busy.Call()) awaited = PyAwaitable.ToTask<long>(c, lt.Loop, cts.Token);
        Thread.Sleep(250);
        var cancel = Task.Factory.StartNew(cts.Cancel, TaskCreationOptions.LongRunning);
        Outcome.Report("awaited", Settle(awaited, 5000));
        Outcome.Report("cancel", Settle(cancel, 1000));
        if (!awaited.IsCompleted || !cancel.IsCompleted) Outcome.Hang("cancelling while the loop disposes the registration");
        lt.Dispose();
    }

    // ---- 8. A timed wait on the loop thread ----

    [Attack("loop.wait_timeout")]
    private static void WaitWithTimeout()
    {
        Init();
        using var sleep = Outcome.Define(Coroutines, "sleep");
        var lt = new EventLoopThread();
        string Blocking(Func<Task<double>, string> block)
        {
            using var c = sleep.Call(10.0);
            var t = PyAwaitable.ToTask<double>(c, lt.Loop);
            var sw = Stopwatch.StartNew();
            string outcome;
            try { outcome = block(t); }
            catch (Exception e) { outcome = Outcome.Describe(e is TaskSchedulerException { InnerException: { } inner } ? inner : e); }
            return $"{outcome} | {sw.ElapsedMilliseconds}";
        }
        var r = lt.RunAsync(_ => Task.FromResult(new[]
        {
            Blocking(t => t.Wait(TimeSpan.FromSeconds(3)) ? "completed" : "timed out"),
            Blocking(t => { t.Wait(); return "completed"; }),
        }));
        var results = Outcome.Within(r, 10_000, "blocking on the loop thread");
        var timed = results[0].Split(" | ");
        Outcome.Report("wait_timeout", timed[0]);
        Outcome.Report("wait_timeout.ms", timed[1]);
        Outcome.Report("wait", results[1].Split(" | ")[0]);
        lt.Dispose();
    }

    // ---- 10. Ctrl-C after Asyncio.Run ----

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private const int SIGINT = 2;

    private static void CtrlC(bool runFirst)
    {
        PythonRuntime.Initialize(); // Python's SIGINT handler, as a console host gets by default
        int pressed = 0;
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            Interlocked.Increment(ref pressed);
        };
        if (runFirst) Outcome.Report("run", Asyncio.Run(_ => Task.FromResult(7)));
        Kill(Environment.ProcessId, SIGINT);
        Thread.Sleep(500);
        Outcome.Report("cancel_key_press_ran", Volatile.Read(ref pressed) > 0);
        Outcome.Try("next_python_call", () =>
        {
            using var sum = Outcome.Define("def total():\n    return sum(range(1000))\n", "total");
            sum.Call().Dispose();
        });
    }

    [Attack("signal.ctrl_c_after_run")]
    private static void CtrlCAfterRun() => CtrlC(runFirst: true);

    [Attack("signal.ctrl_c_without_run")]
    private static void CtrlCWithoutRun() => CtrlC(runFirst: false);

    // ---- 9. Leaks: loop threads ----

    [Attack("leak.loop_thread")]
    private static void LeakLoopThread(string[] args)
    {
        Init();
        int warmup = args.Length >= 2 ? int.Parse(args[0]) : 20, count = args.Length >= 2 ? int.Parse(args[1]) : 200;
        Outcome.MeasureLeak("loop_thread", () => new EventLoopThread().Dispose(), warmup, count);
    }
}
