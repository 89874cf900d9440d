using System.Collections.Concurrent;
using System.Diagnostics;
using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>
/// Everything at once (issue 8, item 11): threads that at random create and dispose loop threads,
/// await Python from .NET and .NET from Python, cancel at random points, dispose Python objects
/// on other threads and force collections; then the interpreter is finalized and the process exits.
/// </summary>
internal static class StressAttacks
{
    private const string Source = """
        import asyncio

        async def echo(x, delay):
            if delay:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            return x

        async def call_dotnet(fn, x, timeout):
            # Python awaits .NET; a short timeout cancels the .NET work from Python.
            try:
                return await asyncio.wait_for(fn(x), timeout)
            except asyncio.TimeoutError:
                return -1
        """;

    /// <summary>What a closed or closing loop, or a cancellation we asked for, may legitimately end in.</summary>
    private static bool Expected(Exception e) =>
        e is OperationCanceledException or ObjectDisposedException or InvalidOperationException;

    private sealed class Tally
    {
        private readonly ConcurrentDictionary<string, long> _counts = new();
        private readonly ConcurrentDictionary<string, string> _firstUnexpected = new();
        internal long Unexpected;
        internal long Hangs;

        internal void Count(string key) => _counts.AddOrUpdate(key, 1, (_, n) => n + 1);

        internal void Failed(string op, Exception e)
        {
            while (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
            if (Expected(e))
            {
                Count($"{op}.expected.{e.GetType().Name}");
                return;
            }
            Interlocked.Increment(ref Unexpected);
            Count($"{op}.unexpected.{e.GetType().Name}");
            _firstUnexpected.TryAdd($"{op}.{e.GetType().Name}", Outcome.Describe(e));
        }

        internal void Hung(string op)
        {
            Interlocked.Increment(ref Hangs);
            Count($"{op}.hang");
        }

        internal void ReportAll()
        {
            foreach (var (k, v) in _counts.OrderBy(kv => kv.Key, StringComparer.Ordinal)) Outcome.Report($"count.{k}", v);
            foreach (var (k, v) in _firstUnexpected) Outcome.Report($"first_unexpected.{k}", v);
        }
    }

    [Attack("stress.mixed")]
    private static void Mixed(string[] args)
    {
        int seconds = args.Length > 0 ? int.Parse(args[0]) : 20;
        int threadCount = args.Length > 1 ? int.Parse(args[1]) : 6;
        PythonRuntime.Initialize(installSignalHandlers: false);
        var tally = new Tally();
        var echo = Outcome.Define(Source, "echo");
        var callDotnet = Outcome.Define(Source, "call_dotnet");
        var work = PyFunction.CreateAsync<long, long>("work", async (x, ct) =>
        {
            await Task.Delay((int)(x % 4), ct);
            return x;
        });
        var loops = new EventLoopThread?[3];
        var orphans = new ConcurrentQueue<PyObject>();   // disposed by whichever thread comes next
        var stop = new CancellationTokenSource();

        void Run(int seed)
        {
            var random = new Random(seed);
            while (!stop.IsCancellationRequested)
            {
                int op = random.Next(100);
                try
                {
                    if (op < 4) CreateLoop();
                    else if (op < 7) DisposeLoop();
                    else if (op < 40) AwaitPython(random);
                    else if (op < 60) CallAsync(random);
                    else if (op < 78) PythonAwaitsDotNet(random);
                    else if (op < 88) DisposeOrphans();
                    else if (op < 93) FunctionRoundTrip();
                    else Collect(random);
                }
                catch (Exception e)
                {
                    tally.Failed(OpName(op), e);
                }
            }
        }

        static string OpName(int op) => op switch
        {
            < 4 => "create_loop", < 7 => "dispose_loop", < 40 => "to_task", < 60 => "call_async",
            < 78 => "python_awaits_dotnet", < 88 => "dispose_orphans", < 93 => "function", _ => "collect",
        };

        EventLoopThread? AnyLoop(Random random) => Volatile.Read(ref loops[random.Next(loops.Length)]);

        void CreateLoop()
        {
            var lt = new EventLoopThread();
            tally.Count("create_loop.ok");
            for (int i = 0; i < loops.Length; i++)
                if (Interlocked.CompareExchange(ref loops[i], lt, null) == null) return;
            Dispose(lt, "dispose_spare");
        }

        void DisposeLoop()
        {
            for (int i = 0; i < loops.Length; i++)
            {
                var lt = Interlocked.Exchange(ref loops[i], null);
                if (lt != null)
                {
                    Dispose(lt, "dispose_loop");
                    return;
                }
            }
        }

        void Dispose(EventLoopThread lt, string op)
        {
            var disposing = Task.Run(lt.Dispose);
            if (!((IAsyncResult)disposing).AsyncWaitHandle.WaitOne(10_000)) { tally.Hung(op); return; }
            if (disposing.IsFaulted) tally.Failed(op, disposing.Exception!);
            else tally.Count($"{op}.ok");
        }

        CancellationToken RandomToken(Random random, List<CancellationTokenSource> owned)
        {
            int kind = random.Next(4);
            if (kind == 0) return CancellationToken.None;
            var cts = new CancellationTokenSource();
            owned.Add(cts);
            if (kind == 1) cts.Cancel();
            else if (kind == 2) cts.CancelAfter(random.Next(0, 3));
            else Task.Run(async () => { await Task.Yield(); cts.Cancel(); });
            return cts.Token;
        }

        void Settle(Task task, string op, bool keepResult = false)
        {
            // Each operation takes milliseconds; 3 s is a hang even on a loaded machine.
            if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(3000)) { tally.Hung(op); return; }
            if (task.IsCanceled) tally.Count($"{op}.canceled");
            else if (task.IsFaulted) tally.Failed(op, task.Exception!);
            else
            {
                tally.Count($"{op}.ok");
                if (keepResult && task is Task<PyObject> t) orphans.Enqueue(t.Result);
            }
        }

        void AwaitPython(Random random)
        {
            var lt = AnyLoop(random);
            if (lt is null) return;
            var owned = new List<CancellationTokenSource>();
            Task<PyObject> task;
            using (var coroutine = echo.Call((long)random.Next(1000), random.Next(3) == 0 ? 0.002 : 0.0))
                task = PyAwaitable.ToTask(coroutine, lt.Loop, RandomToken(random, owned));
            Settle(task, "to_task", keepResult: true);
            owned.ForEach(c => c.Dispose());
        }

        void CallAsync(Random random)
        {
            var lt = AnyLoop(random);
            if (lt is null) return;
            var owned = new List<CancellationTokenSource>();
            Settle(lt.CallAsync<long>(echo, [(long)random.Next(1000), 0.0], RandomToken(random, owned)), "call_async");
            owned.ForEach(c => c.Dispose());
        }

        void PythonAwaitsDotNet(Random random)
        {
            var lt = AnyLoop(random);
            if (lt is null) return;
            var owned = new List<CancellationTokenSource>();
            double timeout = random.Next(3) == 0 ? 0.001 : 1.0;
            Settle(lt.CallAsync<long>(callDotnet, [work, (long)random.Next(1000), timeout], RandomToken(random, owned)), "python_awaits_dotnet");
            owned.ForEach(c => c.Dispose());
        }

        void DisposeOrphans()
        {
            int n = 0;
            while (n < 16 && orphans.TryDequeue(out var o))
            {
                // Some are left to the finalizer (a decref deferred from the finalizer thread).
                if (n++ % 4 != 0) o.Dispose();
            }
            tally.Count("dispose_orphans.ok");
        }

        void FunctionRoundTrip()
        {
            using var f = PyFunction.Create<long, long>("f", x => x + 1);
            if (f.Call<long, long>(1) != 2) throw new Exception("wrong result from a PyFunction");
            tally.Count("function.ok");
        }

        void Collect(Random random)
        {
            if (random.Next(2) == 0)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                tally.Count("collect.dotnet");
            }
            else
            {
                using var gc = Py.Import("gc");
                using (gc.CallMethod("collect")) { }
                tally.Count("collect.python");
            }
        }

        var workers = Enumerable.Range(0, threadCount).Select(i => new Thread(() => Run(1000 + i))
        {
            IsBackground = true,
            Name = $"stress {i}",
        }).ToList();
        workers.ForEach(w => w.Start());
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        stop.Cancel();
        var joined = Task.Run(() => workers.ForEach(w => w.Join()));
        Outcome.Within(joined, 30_000, "stress workers finishing their last operation");

        for (int i = 0; i < loops.Length; i++)
            if (Interlocked.Exchange(ref loops[i], null) is { } lt) Dispose(lt, "final_dispose");
        while (orphans.TryDequeue(out var o)) o.Dispose();
        work.Dispose();
        callDotnet.Dispose();
        echo.Dispose();

        tally.ReportAll();
        Outcome.Report("unexpected", Interlocked.Read(ref tally.Unexpected));
        Outcome.Report("hangs", Interlocked.Read(ref tally.Hangs));
        Console.Out.Flush();
        // The interpreter's end, on the thread that initialized it, with work stopped.
        var sw = Stopwatch.StartNew();
        Outcome.Try("shutdown", () => PythonRuntime.Shutdown(TimeSpan.FromSeconds(10)));
        Outcome.Report("shutdown.ms", sw.ElapsedMilliseconds);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Outcome.Report("finished", true);
    }
}
