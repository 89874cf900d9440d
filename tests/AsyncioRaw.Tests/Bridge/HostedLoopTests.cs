using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

[TestFixture]
public class HostedLoopTests
{
    [Test]
    public async Task Work_from_any_thread_runs_on_the_loop_thread()
    {
        await using var host = new EventLoopThread();
        using var sleep0 = PythonCode.Get("sleep0");
        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(() => host.CallAsync<long, long>(sleep0, i))));
        Assert.That(results.Sum(), Is.EqualTo(4950));
        int loopThread = await host.RunAsync(_ => Task.FromResult(Environment.CurrentManagedThreadId));
        Assert.That(loopThread, Is.EqualTo(host.Loop.ThreadId));
    }

    [Test]
    public async Task Hundred_thousand_awaits_from_eight_threads_at_once()
    {
        await using var host = new EventLoopThread();
        using var sleep0 = PythonCode.Get("sleep0");
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            long sum = 0;
            for (int i = 0; i < 12_500; i++) sum += await host.CallAsync<long, long>(sleep0, i);
            return sum;
        }));
        var sums = await Task.WhenAll(workers);
        Assert.That(sums, Is.All.EqualTo(12_500L * 12_499 / 2));
    }

    [Test]
    public async Task Dispose_cancels_pending_work_stops_closes_and_joins()
    {
        var host = new EventLoopThread();
        using var cancellable = PythonCode.Get("cancellable");
        var netPending = host.RunAsync(async ct => { await Task.Delay(Timeout.Infinite, ct); return 1; });
        var pyPending = host.CallAsync<string>(cancellable, [60.0]);
        await Task.Delay(50);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await host.DisposeAsync();
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(netPending.IsCanceled, $"status {netPending.Status}");
        Assert.That(pyPending.IsCanceled, $"status {pyPending.Status}");
        Assert.Throws<ObjectDisposedException>(() => host.RunAsync(_ => Task.FromResult(0)));
    }

    [Test]
    public async Task A_custom_loop_works()
    {
        using var factory = Py.Run("""
            import asyncio
            class TracingLoop(asyncio.SelectorEventLoop):
                marker = 'custom'
            """);
        await using var host = new EventLoopThread(loopFactory: () => factory["TracingLoop"].Call());
        var marker = await host.RunAsync(async _ =>
        {
            using var asyncio = Py.Import("asyncio");
            using var sleep0 = PythonCode.Get("sleep0");
            await PyAwaitable.ToTask(sleep0.Call(1));
            using var loop = asyncio.CallMethod("get_running_loop");
            return loop.GetAttr("marker").As<string>();
        });
        Assert.That(marker, Is.EqualTo("custom"));
    }

    [Test]
    public void A_custom_event_loop_policy_is_honoured_by_Run()
    {
        // The policy system is deprecated from 3.14 (removal in 3.16) and CI runs the newest
        // Python with DeprecationWarning as an error: this test is about hosts that still use it,
        // so only its own uses are exempt.
        using var policy = Py.Run("""
            import asyncio, warnings
            class PolicyLoop(asyncio.SelectorEventLoop):
                marker = 'from policy'
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', DeprecationWarning)
                class Policy(asyncio.DefaultEventLoopPolicy):
                    def new_event_loop(self):
                        return PolicyLoop()
            def swap(new):
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore', DeprecationWarning)
                    old = asyncio.get_event_loop_policy()
                    asyncio.set_event_loop_policy(new)
                    return old
            """);
        using var asyncio = Py.Import("asyncio");
        using var swap = policy["swap"];
        using var oldPolicy = swap.Call(policy["Policy"].Call());
        try
        {
            var marker = Asyncio.Run(_ =>
            {
                using var loop = asyncio.CallMethod("get_running_loop");
                return Task.FromResult(loop.GetAttr("marker").As<string>());
            });
            Assert.That(marker, Is.EqualTo("from policy"));
        }
        finally
        {
            using (swap.Call(oldPolicy)) { }
        }
    }
}
