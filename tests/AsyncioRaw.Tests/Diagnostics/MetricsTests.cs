using System.Runtime.CompilerServices;
using AsyncioRaw.Tests.Bridge;

namespace AsyncioRaw.Tests.Diagnostics;

/// <summary>
/// Issue 12: every instrument of the AsyncioRaw meter reports after real work against CPython.
/// Non-parallel: levels (awaits in flight, queued releases, thread states) are process-wide, and
/// another test's work would move them.
/// </summary>
[TestFixture, NonParallelizable]
public class MetricsTests
{
    private const string LoopId = AsyncioRawDiagnostics.LoopIdTag;

    [Test]
    public void A_pool_thread_that_waits_for_the_GIL_reports_its_wait_and_its_hold()
    {
        using var metrics = new MetricsRecorder();
        int worker = -1;
        Task holdOnPool;
        using (Gil.Acquire())
        {
            // The pool thread asks for the GIL while this thread keeps it for 200 ms.
            holdOnPool = Task.Run(() =>
            {
                worker = Environment.CurrentManagedThreadId;
                using (Gil.Acquire())
                {
                    using var r = Py.Eval("sum(range(1000))");
                    Thread.Sleep(100);
                }
            });
            Thread.Sleep(200);
        }
        holdOnPool.Wait();
        var wait = metrics.Recorded(AsyncioRawDiagnostics.GilWaitInstrument).Where(m => m.ThreadId == worker).ToList();
        var hold = metrics.Recorded(AsyncioRawDiagnostics.GilHoldInstrument).Where(m => m.ThreadId == worker).ToList();
        Assert.That(wait, Has.Count.EqualTo(1), "one outermost acquisition, one wait");
        Assert.That(wait[0].Value, Is.GreaterThan(0.05).And.LessThan(30), "seconds spent waiting while the test thread held the GIL");
        Assert.That(hold, Has.Count.EqualTo(1));
        Assert.That(hold[0].Value, Is.GreaterThanOrEqualTo(0.09).And.LessThan(30), "seconds held");
    }

    [Test]
    public void Nested_and_unmeasured_holds_report_nothing_and_AllowThreads_splits_a_hold()
    {
        using var metrics = new MetricsRecorder();
        int self = Environment.CurrentManagedThreadId;
        using (Gil.Acquire())
        {
            using (Gil.Acquire()) { } // re-entrant: not a hold of its own
            using (Gil.AllowThreads()) Thread.Sleep(50);
        }
        var holds = metrics.Recorded(AsyncioRawDiagnostics.GilHoldInstrument).Where(m => m.ThreadId == self).ToList();
        var waits = metrics.Recorded(AsyncioRawDiagnostics.GilWaitInstrument).Where(m => m.ThreadId == self).ToList();
        Assert.That(holds, Has.Count.EqualTo(2), "before and after AllowThreads");
        Assert.That(waits, Has.Count.EqualTo(2));
        Assert.That(holds.Sum(h => h.Value), Is.LessThan(0.05), "the released 50 ms are not held time");
    }

    [Test]
    public void A_hold_that_began_with_nobody_listening_is_not_timed()
    {
        int self = Environment.CurrentManagedThreadId;
        MetricsRecorder metrics;
        using (Gil.Acquire())
        {
            // Whether a hold is timed is decided when it begins: no listener, no timestamp.
            metrics = new MetricsRecorder();
        }
        using (metrics)
        {
            Assert.That(metrics.Recorded(AsyncioRawDiagnostics.GilHoldInstrument).Where(m => m.ThreadId == self), Is.Empty);
            using (Gil.Acquire()) { }
            Assert.That(metrics.Recorded(AsyncioRawDiagnostics.GilHoldInstrument).Where(m => m.ThreadId == self).ToList(), Has.Count.EqualTo(1),
                "the next hold is timed");
        }
    }

    [Test]
    public async Task Work_posted_to_a_loop_is_counted_queued_and_its_wait_measured()
    {
        using var metrics = new MetricsRecorder();
        await using var host = new EventLoopThread();
        int id = host.Loop.Id;
        using var sleep0 = PythonCode.Get("sleep0");
        using var entered = new ManualResetEventSlim();
        using var gate = new ManualResetEventSlim();
        // Keep the loop thread busy so that what is posted next waits in its queue.
        var blocker = host.RunAsync(_ =>
        {
            entered.Set();
            gate.Wait(TimeSpan.FromSeconds(20));
            return Task.FromResult(0);
        });
        Assert.That(entered.Wait(TimeSpan.FromSeconds(20)), "the loop never ran the blocker");
        var calls = Enumerable.Range(0, 10).Select(i => host.CallAsync<long, long>(sleep0, i)).ToList();
        double queued = metrics.ObserveOne(AsyncioRawDiagnostics.LoopWorkQueuedInstrument, LoopId, id);
        Thread.Sleep(100);
        gate.Set();
        await blocker;
        Assert.That((await Task.WhenAll(calls)).Sum(), Is.EqualTo(45));

        Assert.That(queued, Is.EqualTo(10), "the ten calls wait behind the blocker");
        Assert.That(metrics.ObserveOne(AsyncioRawDiagnostics.LoopWorkQueuedInstrument, LoopId, id), Is.EqualTo(0));
        var posted = metrics.Recorded(AsyncioRawDiagnostics.LoopWorkPostedInstrument).Where(m => Equals(m.Tags[LoopId], id)).ToList();
        Assert.That(posted.Where(m => (string?)m.Tags[AsyncioRawDiagnostics.WorkKindTag] == "loop_work").Sum(m => m.Value),
            Is.GreaterThanOrEqualTo(11), "the blocker and ten calls");
        var waits = metrics.Recorded(AsyncioRawDiagnostics.LoopQueueWaitInstrument).Where(m => Equals(m.Tags[LoopId], id)).ToList();
        Assert.That(waits, Has.Count.GreaterThanOrEqualTo(11));
        Assert.That(waits.Count(w => w.Value >= 0.09), Is.GreaterThanOrEqualTo(10), "the calls waited at least the 100 ms the loop was blocked");
        Assert.That(waits.Select(w => (string?)w.Tags[AsyncioRawDiagnostics.WorkKindTag]).Distinct(),
            Is.SubsetOf(new[] { "loop_work", "continuation" }));
    }

    [Test]
    public void A_closed_loop_is_no_longer_observed()
    {
        using var metrics = new MetricsRecorder();
        var host = new EventLoopThread();
        int id = host.Loop.Id;
        Assert.That(metrics.Observe(AsyncioRawDiagnostics.LoopWorkQueuedInstrument).Count(m => Equals(m.Tags[LoopId], id)), Is.EqualTo(1));
        host.Dispose();
        Assert.That(metrics.Observe(AsyncioRawDiagnostics.LoopWorkQueuedInstrument).Count(m => Equals(m.Tags[LoopId], id)), Is.EqualTo(0));
    }

    private const string DotnetAwaitsPython = "dotnet_awaits_python", PythonAwaitsDotnet = "python_awaits_dotnet";

    private static double InFlight(MetricsRecorder metrics, string direction) =>
        metrics.ObserveOne(AsyncioRawDiagnostics.AwaitsInFlightInstrument, AsyncioRawDiagnostics.AwaitDirectionTag, direction);

    [Test]
    public async Task Awaits_in_flight_are_counted_each_way_and_end_at_zero()
    {
        using var metrics = new MetricsRecorder();
        await using var host = new EventLoopThread();
        using var g = Py.Run("""
            import asyncio
            async def wait_for(event):
                await event.wait()
                return 1
            async def call_net(f):
                return await f(0)
            """);
        using var wait = g["wait_for"];
        using var callNet = g["call_net"];
        var release = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var net = PyFunction.CreateAsync<long, long>("net", (long _, CancellationToken _) => release.Task);
        double dotnetBefore = InFlight(metrics, DotnetAwaitsPython), pythonBefore = InFlight(metrics, PythonAwaitsDotnet);

        using var evt = await host.RunAsync(_ => { using var asyncio = Py.Import("asyncio"); return Task.FromResult(asyncio.CallMethod("Event")); });
        var pythonSide = Enumerable.Range(0, 5).Select(_ => host.CallAsync<PyObject, long>(wait, evt)).ToList();
        var netSide = Enumerable.Range(0, 3).Select(_ => host.CallAsync<PyObject, long>(callNet, net)).ToList();
        await WaitUntil(() => InFlight(metrics, DotnetAwaitsPython) >= dotnetBefore + 8 && InFlight(metrics, PythonAwaitsDotnet) >= pythonBefore + 3);
        // .NET awaits Python: the five waits and the three calls; Python awaits .NET: the three net() calls.
        Assert.That(InFlight(metrics, DotnetAwaitsPython), Is.EqualTo(dotnetBefore + 8));
        Assert.That(InFlight(metrics, PythonAwaitsDotnet), Is.EqualTo(pythonBefore + 3));

        await host.RunAsync(_ => { using (evt.CallMethod("set")) { } return Task.FromResult(0); });
        release.SetResult(2);
        Assert.That((await Task.WhenAll(pythonSide)).Sum() + (await Task.WhenAll(netSide)).Sum(), Is.EqualTo(5 + 6));
        await WaitUntil(() => InFlight(metrics, PythonAwaitsDotnet) == pythonBefore);
        Assert.That(InFlight(metrics, DotnetAwaitsPython), Is.EqualTo(dotnetBefore));
        Assert.That(InFlight(metrics, PythonAwaitsDotnet), Is.EqualTo(pythonBefore));
    }

    [Test]
    public async Task Cancelled_awaits_and_awaits_ended_by_a_closing_loop_leave_the_count()
    {
        using var metrics = new MetricsRecorder();
        using var cancellable = PythonCode.Get("cancellable");
        using var never = PyFunction.CreateAsync<long, long>("never", async (long _, CancellationToken ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        });
        using var g = Py.Run("async def call_net(f):\n    return await f(0)\n");
        using var callNet = g["call_net"];
        double dotnetBefore = InFlight(metrics, DotnetAwaitsPython), pythonBefore = InFlight(metrics, PythonAwaitsDotnet);
        var host = new EventLoopThread();
        using var cts = new CancellationTokenSource();
        var cancelled = host.CallAsync<string>(cancellable, [60.0], cts.Token);
        var endedByClose = host.CallAsync<string>(cancellable, [60.0]);
        var netEndedByClose = host.CallAsync<PyObject, long>(callNet, never);
        await WaitUntil(() => InFlight(metrics, DotnetAwaitsPython) >= dotnetBefore + 3 && InFlight(metrics, PythonAwaitsDotnet) >= pythonBefore + 1);
        cts.Cancel();
        Assert.That(async () => await cancelled, Throws.InstanceOf<OperationCanceledException>());
        await host.DisposeAsync();
        Assert.That(endedByClose.IsCanceled && netEndedByClose.IsCompleted);
        await WaitUntil(() => InFlight(metrics, PythonAwaitsDotnet) == pythonBefore);
        Assert.That(InFlight(metrics, DotnetAwaitsPython), Is.EqualTo(dotnetBefore));
    }

    [Test]
    public void Objects_finalized_without_the_GIL_are_observed_as_queued_releases_until_a_hold_drains_them()
    {
        using var metrics = new MetricsRecorder();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using (Gil.Acquire()) DeferredRelease.Drain();
        Assert.That(metrics.ObserveOne(AsyncioRawDiagnostics.DeferredReleasesInstrument), Is.EqualTo(0));
        DropUndisposed(100);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.That(metrics.ObserveOne(AsyncioRawDiagnostics.DeferredReleasesInstrument), Is.GreaterThanOrEqualTo(100),
            "the finalizer thread queued the releases (no GIL there)");
        using (Gil.Acquire()) { } // the next outermost hold drains the queue
        Assert.That(metrics.ObserveOne(AsyncioRawDiagnostics.DeferredReleasesInstrument), Is.EqualTo(0));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropUndisposed(int count)
    {
        for (int i = 0; i < count; i++) PyConvert.ToPython($"dropped {i}"); // never disposed: the finalizer releases it
    }

    private const string Live = "live", Exited = "exited";

    private static double ThreadStates(MetricsRecorder metrics, string state) =>
        metrics.ObserveOne(AsyncioRawDiagnostics.ThreadStatesInstrument, AsyncioRawDiagnostics.ThreadStateTag, state);

    [Test]
    public void Thread_states_are_counted_while_their_threads_live_and_until_they_are_deleted()
    {
        using var metrics = new MetricsRecorder();
        using (Gil.Acquire()) { } // reap what earlier tests left
        double live = ThreadStates(metrics, Live), exited = ThreadStates(metrics, Exited);
        using var release = new ManualResetEventSlim();
        using var holding = new CountdownEvent(3);
        var threads = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            using (Gil.Acquire()) { } // the thread's own Python thread state, kept while it lives
            holding.Signal();
            release.Wait(TimeSpan.FromSeconds(20));
        })).ToList();
        threads.ForEach(t => t.Start());
        Assert.That(holding.Wait(TimeSpan.FromSeconds(20)));
        Assert.That(ThreadStates(metrics, Live), Is.EqualTo(live + 3));
        release.Set();
        threads.ForEach(t => t.Join());
        threads.Clear();
        for (int i = 0; i < 3 && ThreadStates(metrics, Live) > live; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        // (A pool thread retiring meanwhile may move both by one more: hence the inequalities.)
        Assert.That(ThreadStates(metrics, Live), Is.LessThanOrEqualTo(live), "exited threads are not live");
        Assert.That(ThreadStates(metrics, Exited), Is.GreaterThanOrEqualTo(exited + 3), "their states wait for a GIL holder to delete them");
        using (Gil.Acquire()) { }
        bool reaps = PythonLibrary.Minor < 12 || !PythonRuntime.IsDebugBuild; // see Gil.ReapDeadThreadStates
        if (reaps) Assert.That(ThreadStates(metrics, Exited), Is.LessThanOrEqualTo(exited + 1), "deleted (3.12+ may keep one helper state)");
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("condition not reached within 20 s");
            await Task.Delay(10);
        }
    }
}
