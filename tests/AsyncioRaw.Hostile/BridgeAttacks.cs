using System.Collections.Concurrent;
using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>
/// Attacks on what the bridge exposes to Python code (issue 8): its internal callables are plain
/// builtins that Python can find (a coroutine frame's locals, a future's callbacks, a weakref's
/// callback, the selector's reader) and call with anything; futures that lie about their state;
/// per-operation leaks.
/// </summary>
internal static class BridgeAttacks
{
    private static void Init() => PythonRuntime.Initialize(installSignalHandlers: false);

    // ---- 3. The report callable of run_and_report ----

    private const string ReportProbe = """
        import asyncio

        def kind(e):
            # The standard class a caller would catch (the bridge raises subclasses like DotNetTypeError).
            for base in (TypeError, ValueError, OverflowError, KeyError):
                if isinstance(e, base):
                    return base.__name__
            return type(e).__name__

        async def probe(variant):
            await asyncio.sleep(0)
            # The task running us is run_and_report(coro, report, key): its frame holds both.
            frame = asyncio.current_task().get_coro().cr_frame
            report = frame.f_locals['report']
            key = frame.f_locals['key']
            try:
                if variant == 'no_args':
                    report()
                elif variant == 'one_arg':
                    report(key)
                elif variant == 'two_args':
                    report(key, True)
                elif variant == 'string_key':
                    report('not a key', True, 1)
                elif variant == 'huge_key':
                    report(10 ** 100, True, 1)
                elif variant == 'unknown_key':
                    report(key + 1000, True, 1)
                elif variant == 'not_exception':
                    report(key, False, 'not an exception')
                elif variant == 'keywords':
                    report(key=key, ok=True, value=1)
            except BaseException as e:
                return 'raised ' + kind(e)
            return 'returned'
        """;

    private static void CallReport(string variant)
    {
        Init();
        using var probe = Outcome.Define(ReportProbe, "probe");
        using var lt = new EventLoopThread();
        var r = lt.CallAsync<string, string>(probe, variant);
        Outcome.Report("result", LoopAttacks.Settle(r, 3000));
    }

    [Attack("bridge.report.no_args")] private static void ReportNoArgs() => CallReport("no_args");
    [Attack("bridge.report.one_arg")] private static void ReportOneArg() => CallReport("one_arg");
    [Attack("bridge.report.two_args")] private static void ReportTwoArgs() => CallReport("two_args");
    [Attack("bridge.report.string_key")] private static void ReportStringKey() => CallReport("string_key");
    [Attack("bridge.report.huge_key")] private static void ReportHugeKey() => CallReport("huge_key");
    [Attack("bridge.report.unknown_key")] private static void ReportUnknownKey() => CallReport("unknown_key");
    [Attack("bridge.report.not_exception")] private static void ReportNotException() => CallReport("not_exception");
    [Attack("bridge.report.keywords")] private static void ReportKeywords() => CallReport("keywords");

    // ---- 3. Other callables Python can reach ----

    private const string Reach = """
        import asyncio, threading, time, weakref

        def kind(e):
            for base in (TypeError, ValueError, OverflowError, KeyError):
                if isinstance(e, base):
                    return base.__name__
            return type(e).__name__

        def dotnet_callbacks(future):
            found = []
            for entry in (future._callbacks or []):
                cb = entry[0] if isinstance(entry, tuple) else entry
                if getattr(cb, '__name__', '') == 'dotnet_callback':
                    found.append(cb)
            return found

        def weak_callbacks(obj):
            return [w.__callback__ for w in weakref.getweakrefs(obj)
                    if getattr(w.__callback__, '__name__', '') == 'dotnet_callback']

        def abuse(cb, args_list, loop):
            out = []
            for label, args in args_list:
                try:
                    cb(*args)
                    out.append(label + ':returned')
                except BaseException as e:
                    out.append(label + ':' + kind(e))
            return out

        def done_future(loop, value):
            f = loop.create_future()
            f.set_result(value)
            return f

        def cancelled_future(loop):
            f = loop.create_future()
            f.cancel()
            return f

        # The done callback of a .NET await of a plain future (PyAwaitable.ToTask(future)).
        async def await_callback(start_await):
            loop = asyncio.get_running_loop()
            f = loop.create_future()
            start_await(f)
            out = []
            for cb in dotnet_callbacks(f):
                out += abuse(cb, [('str', ('not a future',)), ('none', (None,)),
                                  ('foreign_done', (done_future(loop, 99),)),
                                  ('foreign_cancelled', (cancelled_future(loop),))], loop)
            loop.call_later(0.05, f.set_result, 5)
            await asyncio.sleep(0.2)
            return ','.join(out) or 'no callback found'

        # The done callback of a Python await of .NET work (PyFunction.CreateAsync).
        async def completion_callback(work):
            loop = asyncio.get_running_loop()
            f = work(7)
            out = []
            for cb in dotnet_callbacks(f):
                out += abuse(cb, [('str', ('not a future',)), ('foreign_cancelled', (cancelled_future(loop),))], loop)
            try:
                out.append('awaited:' + repr(await f))
            except BaseException as e:
                out.append('awaited:' + type(e).__name__)
            return ','.join(out)

        # The weakref callback that cancels .NET work when its future is collected unawaited.
        async def completion_weakref(work):
            loop = asyncio.get_running_loop()
            f = work(7)
            out = []
            cbs = weak_callbacks(f)
            if not cbs:
                out.append('no weakref callback found')
            for cb in cbs:
                out += abuse(cb, [('str', ('not a weakref',)), ('none', (None,))], loop)
            try:
                out.append('awaited:' + repr(await f))
            except BaseException as e:
                out.append('awaited:' + type(e).__name__)
            return ','.join(out)

        # The weakref callback that closes the bridge's side of an adopted loop when it is collected,
        # called while the loop is alive and running.
        def adopted_loop_weakref(work):
            async def main():
                loop = asyncio.get_running_loop()
                out = ['first:' + repr(await work(1))]
                cbs = weak_callbacks(loop)
                if not cbs:
                    out.append('no weakref callback found')
                for cb in cbs:
                    out += abuse(cb, [('str', ('not a weakref',))], loop)
                for i in range(3):
                    try:
                        out.append('again:' + repr(await asyncio.wait_for(work(2), 2)))
                    except BaseException as e:
                        out.append('again:' + type(e).__name__)
                return ','.join(out)
            return asyncio.run(main())

        def find_drain(loop):
            for key in loop._selector.get_map().values():
                reader = key.data[0]
                if reader is not None and getattr(reader._callback, '__name__', '') == 'dotnet_callback':
                    return reader._callback
            return None

        def hammer(cb, seconds):
            state = {'calls': 0, 'error': None}
            def run():
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    try:
                        cb()
                        state['calls'] += 1
                    except BaseException as e:
                        state['error'] = type(e).__name__
                        return
            t = threading.Thread(target=run, daemon=True)
            t.start()
            return t, state
        """;

    [Attack("bridge.callback.await_done")]
    private static void AwaitDoneCallback()
    {
        Init();
        using var attack = Outcome.Define(Reach, "await_callback");
        using var lt = new EventLoopThread();
        Task<long>? awaited = null;
        using var startAwait = PyFunction.Create<PyObject, object?>("start_await", f =>
        {
            using (f) awaited = PyAwaitable.ToTask<long>(f);
            return null;
        });
        Outcome.Report("python", LoopAttacks.Settle(lt.CallAsync<PyObject, string>(attack, startAwait), 3000));
        Outcome.Report("awaited", awaited is null ? "never started" : LoopAttacks.Settle(awaited, 2000));
    }

    private static PyObject SlowSeven(ConcurrentQueue<string> log) =>
        PyFunction.CreateAsync<long, long>("work", async (x, ct) =>
        {
            try
            {
                await Task.Delay(300, ct);
                return x;
            }
            catch (OperationCanceledException)
            {
                log.Enqueue("dotnet_work_cancelled");
                throw;
            }
        });

    [Attack("bridge.callback.completion_done")]
    private static void CompletionDoneCallback()
    {
        Init();
        using var attack = Outcome.Define(Reach, "completion_callback");
        using var lt = new EventLoopThread();
        var log = new ConcurrentQueue<string>();
        using var work = SlowSeven(log);
        Outcome.Report("python", LoopAttacks.Settle(lt.CallAsync<PyObject, string>(attack, work), 3000));
        Outcome.Report("dotnet_work_cancelled", log.Contains("dotnet_work_cancelled"));
    }

    [Attack("bridge.callback.completion_weakref")]
    private static void CompletionWeakref()
    {
        Init();
        using var attack = Outcome.Define(Reach, "completion_weakref");
        using var lt = new EventLoopThread();
        var log = new ConcurrentQueue<string>();
        using var work = SlowSeven(log);
        Outcome.Report("python", LoopAttacks.Settle(lt.CallAsync<PyObject, string>(attack, work), 3000));
        Outcome.Report("dotnet_work_cancelled", log.Contains("dotnet_work_cancelled"));
    }

    [Attack("bridge.callback.loop_weakref")]
    private static void AdoptedLoopWeakref()
    {
        Init();
        using var attack = Outcome.Define(Reach, "adopted_loop_weakref");
        using var work = PyFunction.CreateAsync<long, long>("work", async x =>
        {
            await Task.Delay(20).ConfigureAwait(false); // completes from the thread pool: a Post to the loop
            return x;
        });
        var run = Task.Factory.StartNew(() => attack.Call<PyObject, string>(work), TaskCreationOptions.LongRunning);
        Outcome.Report("python", LoopAttacks.Settle(run, 10_000));
    }

    /// <summary>The loop's drain callback (its eventfd reader) called with an argument, and from a
    /// Python thread that is not the loop's: .NET work posted to the loop must still run only there.</summary>
    [Attack("bridge.callback.drain")]
    private static void DrainFromForeignThread()
    {
        Init();
        using var findDrain = Outcome.Define(Reach, "find_drain");
        using var hammer = Outcome.Define(Reach, "hammer");
        using var lt = new EventLoopThread();
        using var loopObj = lt.Loop.Loop;
        using var drain = findDrain.Call(loopObj);
        if (drain.IsNone)
        {
            Outcome.Report("drain", "not found");
            return;
        }
        Outcome.Try("drain_with_arg", () => drain.Call(1).Dispose());
        int loopThread = lt.Loop.ThreadId, offThread = 0, ran = 0;
        using var started = hammer.Call(drain, 1.5);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.ElapsedMilliseconds < 1500)
        {
            for (int i = 0; i < 50; i++)
            {
                LoopAttacks.Post(lt.Loop, () =>
                {
                    Interlocked.Increment(ref ran);
                    if (Environment.CurrentManagedThreadId != loopThread) Interlocked.Increment(ref offThread);
                });
            }
            Thread.Sleep(1);
        }
        Thread.Sleep(300);
        using (var state = started[1])
        {
            Outcome.Report("python_calls", state["calls"].As<long>());
            using var error = state["error"];
            Outcome.Report("python_error", error.IsNone ? "none" : error.As<string>());
        }
        Outcome.Report("ran", Volatile.Read(ref ran));
        Outcome.Report("ran_off_loop_thread", Volatile.Read(ref offThread));
    }

    // ---- 7. Futures whose methods raise ----

    [Attack("bridge.future_methods_raise")]
    private static void FutureMethodsRaise()
    {
        Init();
        using var make = Outcome.Define("""
            import asyncio

            class BadCancelled(asyncio.Future):
                def cancelled(self):
                    raise RuntimeError('cancelled() boom')

            class BadDone(asyncio.Future):
                def done(self):
                    raise RuntimeError('done() boom')

            class BadResult(asyncio.Future):
                def result(self):
                    raise RuntimeError('result() boom')

            def make(kind):
                loop = asyncio.get_running_loop()
                f = globals()[kind](loop=loop)
                loop.call_later(0.05, f.set_result, 1)
                return f
            """, "make");
        foreach (var kind in new[] { "BadCancelled", "BadDone", "BadResult" })
        {
            var lt = new EventLoopThread();
            var r = lt.CallAsync<string, long>(make, kind);
            Outcome.Report(kind, LoopAttacks.Settle(r, 3000));
            // A hung await is left with its loop: disposing would only add a second symptom.
            if (r.IsCompleted) lt.Dispose();
        }
    }

    // ---- 9. Leaks ----

    [Attack("leak.pyfunction")]
    private static void LeakPyFunction(string[] args)
    {
        Init();
        var (warmup, count) = Counts(args, 2000, 20_000);
        Outcome.MeasureLeak("pyfunction", () => PyFunction.Create<long, long>("f", x => x).Dispose(), warmup, count);
    }

    /// <summary>Optional arguments: warm-up and measured operation counts.</summary>
    private static (int Warmup, int Count) Counts(string[] args, int warmup, int count) =>
        args.Length >= 2 ? (int.Parse(args[0]), int.Parse(args[1])) : (warmup, count);

    [Attack("leak.async_stream")]
    private static void LeakAsyncStream(string[] args)
    {
        var (warmup, count) = Counts(args, 300, 3000);
        Init();
        using var consume = Outcome.Define("""
            async def consume(it):
                n = 0
                async for x in it:
                    n += 1
                return n
            """, "consume");
        using var closeEarly = Outcome.Define("""
            async def close_early(it):
                first = await it.__anext__()
                await it.aclose()
                return first
            """, "close_early");
        using var lt = new EventLoopThread();
        Outcome.MeasureLeak("consumed", () =>
        {
            using var it = PyAsyncStreams.ToPython(LoopAttacks.Numbers(3));
            Outcome.Within(lt.CallAsync<PyObject, long>(consume, it), 5000, "consuming a .NET async stream");
        }, warmup, count);
        Outcome.MeasureLeak("closed", () =>
        {
            using var it = PyAsyncStreams.ToPython(LoopAttacks.Numbers(3));
            Outcome.Within(lt.CallAsync<PyObject, long>(closeEarly, it), 5000, "closing a .NET async stream early");
        }, warmup, count);
    }

    [Attack("leak.roundtrip")]
    private static void LeakRoundTrip(string[] args)
    {
        var (warmup, count) = Counts(args, 500, 5000);
        Init();
        using var echo = Outcome.Define("""
            import asyncio

            async def echo(x):
                await asyncio.sleep(0)
                return x
            """, "echo");
        using var roundTrip = Outcome.Define("""
            async def round_trip(g):
                return await g(1)
            """, "round_trip");
        using var g = PyFunction.CreateAsync<long, long>("g", async x =>
        {
            await Task.Yield();
            return x;
        });
        using var lt = new EventLoopThread();
        Outcome.MeasureLeak("to_task", () =>
        {
            using var c = echo.Call(1L);
            Outcome.Within(PyAwaitable.ToTask<long>(c, lt.Loop), 5000, "a coroutine awaited from .NET");
        }, warmup, count);
        Outcome.MeasureLeak("from_task", () =>
            Outcome.Within(lt.CallAsync<PyObject, long>(roundTrip, g), 5000, ".NET work awaited from Python"),
            warmup, count);
    }
}
