using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

/// <summary>Cancellation at random moments, late completions, and shutdown under load.</summary>
[TestFixture]
public class RaceTests
{
    private const string HandlerSource = """
        import asyncio
        errors = []
        def install(loop):
            loop.set_debug(True)
            loop.set_exception_handler(lambda loop, ctx: errors.append(repr(ctx.get('exception') or ctx.get('message'))))
        async def race(f, delay):
            fut = asyncio.ensure_future(f(0.1))
            await asyncio.sleep(delay)
            fut.cancel()
            try:
                await fut
            except asyncio.CancelledError:
                pass
        """;

    [Test]
    public void Thousand_random_cancel_races_raise_no_InvalidStateError_and_no_hang()
    {
        using var g = Py.Run(HandlerSource);
        var random = new Random(1234);
        var errors = Asyncio.Run(async _ =>
        {
            using var asyncio = Py.Import("asyncio");
            using var loop = asyncio.CallMethod("get_running_loop");
            using (g["install"].Call(loop)) { }
            using var delay = PyFunction.CreateAsync<double, long>("delay", async (double seconds, CancellationToken ct) =>
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds)); // ignores the token: completes late on purpose
                return 1;
            });
            var rounds = Enumerable.Range(0, 1000).Select(_ => 0.099 + random.NextDouble() * 0.002).ToList();
            // 1,000 rounds, 50 at a time so the test stays around 2-3 s.
            for (int i = 0; i < rounds.Count; i += 50)
            {
                var batch = rounds.Skip(i).Take(50).Select(d => PyAwaitable.ToTask(g["race"].Call(delay, d)));
                foreach (var t in await Task.WhenAll(batch)) t.Dispose();
            }
            await Task.Delay(300); // let every late .NET completion arrive
            return g["errors"].ToClr();
        });
        Assert.That(errors, Is.Empty);
    }

    [Test]
    public void Late_completion_after_the_loop_closed_is_dropped_quietly()
    {
        using var g = Py.Run(HandlerSource);
        var release = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var stderr = Console.Error;
        var captured = new StringWriter();
        Asyncio.Run(async _ =>
        {
            using var pending = PyFuture.FromTask(release.Task); // never awaited before the loop ends
            await Task.Yield();
            return 0;
        });
        Console.SetError(captured);
        try
        {
            release.SetResult(5); // the loop is closed: must not call into it
            Thread.Sleep(100);
        }
        finally { Console.SetError(stderr); }
        Assert.That(captured.ToString(), Does.Not.Contain("closed"));
    }

    [Test]
    public async Task Shutdown_with_ten_thousand_pending_operations_both_ways_is_prompt()
    {
        var host = new EventLoopThread();
        using var cancellable = PythonCode.Get("cancellable");
        using var never = PyFunction.CreateAsync<long, long>("never", async (long _, CancellationToken ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        });
        using var starter = Py.Run("""
            import asyncio
            def start(never, n):
                return [asyncio.ensure_future(never(i)) for i in range(n)]
            """);
        var pythonPending = Enumerable.Range(0, 10_000).Select(_ => host.CallAsync<string>(cancellable, [60.0])).ToList();
        var started = await host.RunAsync(_ => Task.FromResult(starter["start"].Call(never, 10_000)));
        await Task.Delay(200);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await host.DisposeAsync();
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "shutdown was not prompt");
        Assert.That(pythonPending.All(t => t.IsCompleted));
        Assert.That(pythonPending.Count(t => t.IsCanceled), Is.EqualTo(10_000));
        started.Dispose();
    }
}
