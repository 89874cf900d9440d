using System.Diagnostics;
using AsyncioRaw;
using AsyncioRaw.Testing;

namespace AsyncioRaw.Tests.Harness;

/// <summary>pyo3-asyncio / pyo3-async-runtimes' own suite (pytests/), ported onto the harness.</summary>
[TestFixture]
public class ReferenceScenarioTests
{
    private static PyObject Code(string source) => Py.Run(source, fileName: "reference_scenarios.py");

    private static readonly Lazy<PyObject> G = new(() => Code("""
        import asyncio, contextvars, time
        cvar = contextvars.ContextVar('cvar')

        async def sleep(seconds):
            await asyncio.sleep(seconds)

        async def sleep_for_1s(dotnet_sleep):
            await dotnet_sleep(1.0)

        async def read_cvar():
            await asyncio.sleep(0)
            return cvar.get()

        async def contextvars_round(value, dotnet_fn):
            cvar.set(value)
            return await dotnet_fn(0)

        async def gen_sleepy():
            for i in range(10):
                await asyncio.sleep(0.1)
                yield i

        async def gen_burst():
            for i in range(1000):
                yield i
        """));

    private static PyObject Get(string name) => G.Value[name];

    [AsyncioTest]
    [Test]
    public async Task Into_future_awaits_an_asyncio_sleep_coroutine()
    {
        using var sleep = Get("sleep");
        await PyAwaitable.ToTask(sleep.Call(0.1));
    }

    [AsyncioTest]
    [Test]
    public async Task Future_into_py_round_trip_NET_awaits_Python_awaiting_NET()
    {
        using var dotnetSleep = PyFunction.CreateAsync<double, long>("dotnet_sleep", async (double s, CancellationToken ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(s), ct);
            return 0;
        });
        var sw = Stopwatch.StartNew();
        using var done = await PyAwaitable.ToTask(Get("sleep_for_1s").Call(dotnetSleep));
        Assert.That(sw.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(0.95)));
    }

    [AsyncioTest]
    [Test]
    public async Task Async_sleep_a_NET_delay_then_asyncio_sleep_1s()
    {
        await Task.Delay(100);
        using var sleep = Get("sleep");
        await PyAwaitable.ToTask(sleep.Call(1.0));
    }

    [AsyncioTest]
    public void Blocking_sleep_runs_off_the_loop_thread_which_keeps_running(EventLoop loop)
    {
        Assert.That(Environment.CurrentManagedThreadId, Is.Not.EqualTo(loop.ThreadId));
        using var ticks = Py.Run("""
            import asyncio
            count = [0]
            async def tick():
                while True:
                    await asyncio.sleep(0.05)
                    count[0] += 1
            """);
        using var stop = new CancellationTokenSource();
        var ticker = PyAwaitable.ToTask(ticks["tick"].Call(), loop, stop.Token); // from this pool thread
        Thread.Sleep(1000); // blocks this test's body, not the loop
        var ticked = ticks["count"][0].As<long>();
        stop.Cancel();
        try { ticker.Wait(TimeSpan.FromSeconds(10)); }
        catch (AggregateException) { /* cancelled, as asked */ }
        Assert.That(ticker.IsCanceled, $"ticker {ticker.Status}");
        Assert.That(ticked, Is.GreaterThan(5), "the loop stalled while the test body blocked");
    }

    [AsyncioTest]
    [Test]
    public async Task Other_awaitables_run_in_executor_future_converts()
    {
        using var asyncio = Py.Import("asyncio");
        using var time = Py.Import("time");
        using var loop = asyncio.CallMethod("get_running_loop");
        using var future = loop.CallMethod("run_in_executor", Py.None, time.GetAttr("sleep"), 1);
        Assert.That(future.TypeName, Is.EqualTo("Future"));
        var sw = Stopwatch.StartNew();
        using var _ = await PyAwaitable.ToTask(future);
        Assert.That(sw.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(0.95)));
    }

    [AsyncioTest]
    [Test]
    public async Task Panic_a_throwing_NET_function_surfaces_as_the_mapped_exception()
    {
        using var fail = PyFunction.CreateAsync<long, long>("fail", async (long _, CancellationToken ct) =>
        {
            await Task.Yield();
            throw new NotSupportedException("panic from .NET");
        });
        using var script = Code("async def call(f):\n    return await f(1)\n");
        // Awaited in try/catch: Assert.ThrowsAsync would block the loop thread.
        Exception? caught = null;
        try { using (await PyAwaitable.ToTask(script["call"].Call(fail))) { } }
        catch (Exception e) { caught = e; }
        Assert.That(caught, Is.InstanceOf<NotSupportedException>());
        Assert.That(caught!.Message, Is.EqualTo("panic from .NET"));
        using var check = Code("""
            async def check(f):
                try:
                    await f(1)
                except NotImplementedError as e:
                    return e.dotnet_type
            """);
        using var type = await PyAwaitable.ToTask(check["check"].Call(fail));
        Assert.That(type.As<string>(), Is.EqualTo("System.NotSupportedException"));
    }

    [AsyncioTest]
    [Test]
    public async Task Cancel_a_future_wrapping_a_1s_NET_delay()
    {
        bool completed = false;
        using var delay = PyFunction.CreateAsync<double, long>("delay", async (double s, CancellationToken ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(s), ct);
            completed = true;
            return 0;
        });
        using var script = Code("""
            import asyncio
            async def main(delay):
                fut = delay(1.0)
                fut.cancel()
                try:
                    await fut
                except asyncio.CancelledError:
                    return 'CancelledError'
            """);
        using var outcome = await PyAwaitable.ToTask(script["main"].Call(delay));
        Assert.That(outcome.As<string>(), Is.EqualTo("CancelledError"));
        await Task.Delay(TimeSpan.FromSeconds(1.1));
        Assert.That(completed, Is.False, "the .NET work ran to completion");
    }

    [Test]
    public void Multiple_asyncio_runs_two_runs_then_plain_Python_loops()
    {
        using var delay = PyFunction.CreateAsync<long, long>("delay", async (long x, CancellationToken ct) => { await Task.Delay(10, ct); return x; });
        for (int i = 0; i < 2; i++)
            Assert.That(Asyncio.Run(async _ =>
            {
                using (await PyAwaitable.ToTask(Get("sleep").Call(0.01))) { }
                return i;
            }), Is.EqualTo(i));
        using var script = Code("""
            import asyncio
            async def main(f):
                return await f(21) * 2
            def twice(f):
                return [asyncio.new_event_loop().run_until_complete(main(f)) for _ in range(2)]
            """);
        Assert.That(script["twice"].Call(delay).ToClr(), Is.EqualTo(new List<object?> { 42L, 42L }));
    }

    [AsyncioTest]
    [Test]
    public async Task Contextvars_set_in_Python_are_seen_by_Python_awaited_from_NET_twice()
    {
        using var readCvar = Get("read_cvar");
        using var dotnetFn = PyFunction.CreateAsync<long, PyObject>("dotnet_fn", async (long _, CancellationToken ct) =>
            await PyAwaitable.ToTask(readCvar.Call(), ct));
        using var round = Get("contextvars_round");
        foreach (var value in new[] { "first", "second" })
        {
            using var seen = await PyAwaitable.ToTask(round.Call(value, dotnetFn));
            Assert.That(seen.As<string>(), Is.EqualTo(value));
        }
    }

    [Test]
    public async Task Run_forever_is_stopped_from_NET_with_call_soon_threadsafe()
    {
        var started = new TaskCompletionSource<PyObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            using var asyncio = Py.Import("asyncio");
            using var loop = asyncio.CallMethod("new_event_loop");
            started.SetResult(loop.NewReference());
            using (loop.CallMethod("run_forever")) { }
            using (loop.CallMethod("close")) { }
        });
        thread.Start();
        using var runningLoop = await started.Task;
        await Task.Delay(100);
        using (runningLoop.CallMethod("call_soon_threadsafe", runningLoop.GetAttr("stop"))) { }
        Assert.That(thread.Join(TimeSpan.FromSeconds(10)), "run_forever did not stop");
    }

    [AsyncioTest]
    [Test]
    public async Task Async_generator_sleepy_and_burst_are_collected_from_NET()
    {
        var sleepy = new List<long>();
        await foreach (var i in Get("gen_sleepy").Call().AsAsyncEnumerable<long>()) sleepy.Add(i);
        Assert.That(sleepy, Is.EqualTo(Enumerable.Range(0, 10).Select(i => (long)i)));
        long count = 0, sum = 0;
        await foreach (var i in Get("gen_burst").Call().AsAsyncEnumerable<long>()) { count++; sum += i; }
        Assert.That((count, sum), Is.EqualTo((1000L, 999L * 1000 / 2)));
    }

    [Test]
    public void Race_regression_thousand_fresh_debug_loops_never_call_the_exception_handler()
    {
        using var script = Code("""
            import asyncio, random
            def one_round(delay_fn, seed):
                errors = []
                rnd = random.Random(seed)
                loop = asyncio.new_event_loop()
                loop.set_debug(True)
                loop.set_exception_handler(lambda loop, ctx: errors.append(repr(ctx)))
                async def main():
                    fut = asyncio.ensure_future(delay_fn(0.1))
                    await asyncio.sleep(rnd.uniform(0.099, 0.101))
                    fut.cancel()
                    try:
                        await fut
                    except asyncio.CancelledError:
                        pass
                    await asyncio.sleep(0.01)   # let a late .NET completion arrive while the loop lives
                try:
                    loop.run_until_complete(main())
                finally:
                    loop.close()
                return errors
            """);
        using var delay = PyFunction.CreateAsync<double, long>("delay", async (double s, CancellationToken _) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(s)); // ignores cancellation: races the cancel
            return 0;
        });
        // 1,000 rounds on 20 threads, each round its own fresh debug-mode loop.
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 1000, new ParallelOptions { MaxDegreeOfParallelism = 20 }, seed =>
        {
            using var result = script["one_round"].Call(delay, seed);
            foreach (var e in (List<object?>)result.ToClr()!) errors.Add((string)e!);
        });
        Assert.That(errors, Is.Empty);
    }

    [TestCase(2, 3, ExpectedResult = 5L)]
    [TestCase(10, 20, ExpectedResult = 30L)]
    [AsyncioTest]
    public async Task<long> TestCase_parameters_and_expected_results_work(int a, int b)
    {
        using var add = Code("async def add(a, b):\n    return a + b\n");
        return await PyAwaitable.ToTask<long>(add["add"].Call(a, b));
    }

    [AsyncioTest]
    [Test, CancelAfter(300)]
    public async Task CancelAfter_cancels_the_Python_side_too(CancellationToken token)
    {
        using var cancellable = Code("""
            import asyncio
            seen = []
            async def wait():
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    seen.append('cancelled')
                    raise
            """);
        var sw = Stopwatch.StartNew();
        Exception? caught = null;
        try { using (await PyAwaitable.ToTask(cancellable["wait"].Call(), token)) { } }
        catch (Exception e) { caught = e; }
        Assert.That(caught, Is.InstanceOf<OperationCanceledException>());
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(cancellable["seen"].ToClr(), Is.EqualTo(new List<object?> { "cancelled" }));
    }

    private PyObject? _fromSetUp;

    [AsyncioSetUp]
    public async Task AsyncSetUpRunsInTheLoop()
    {
        using var sleep = Get("sleep");
        await PyAwaitable.ToTask(sleep.Call(0));
        _fromSetUp = PyConvert.ToPython("set up in the loop");
    }

    [AsyncioTearDown]
    public async Task AsyncTearDownRunsInTheLoop()
    {
        await Task.Yield();
        _fromSetUp?.Dispose();
        _fromSetUp = null;
    }

    [AsyncioTest]
    [Test]
    public void Async_setup_ran_in_the_same_loop_before_the_body() =>
        Assert.That(_fromSetUp?.As<string>(), Is.EqualTo("set up in the loop"));
}

[TestFixture, Parallelizable(ParallelScope.Self)]
public class ParallelFixtureA
{
    [AsyncioTest, Test]
    public async Task Each_parallel_fixture_has_its_own_loop_thread() => await Helpers.OwnLoop();
}

[TestFixture, Parallelizable(ParallelScope.Self)]
public class ParallelFixtureB
{
    [AsyncioTest, Test]
    public async Task Each_parallel_fixture_has_its_own_loop_thread() => await Helpers.OwnLoop();
}

internal static class Helpers
{
    internal static async Task OwnLoop()
    {
        var loop = TaskLocals.Require().Loop;
        Assert.That(loop.ThreadId, Is.EqualTo(Environment.CurrentManagedThreadId));
        using var asyncio = Py.Import("asyncio");
        using var sleep = asyncio.CallMethod("sleep", 0.2);
        await PyAwaitable.ToTask(sleep);
        Assert.That(Environment.CurrentManagedThreadId, Is.EqualTo(loop.ThreadId));
    }
}

[TestFixture, AsyncioFixture]
public class SharedLoopFixtureTests
{
    private static int? s_firstLoopThread;
    private static PyObject? s_state;

    [AsyncioTest, Order(1)]
    public async Task First_test_leaves_state_in_the_shared_loop()
    {
        s_firstLoopThread = TaskLocals.Require().Loop.ThreadId;
        Assert.That(Environment.CurrentManagedThreadId, Is.EqualTo(s_firstLoopThread));
        using var asyncio = Py.Import("asyncio");
        using var loop = asyncio.CallMethod("get_running_loop");
        s_state = loop.CallMethod("create_future"); // a future of this loop, completed by the next test
        await Task.Yield();
    }

    [AsyncioTest, Order(2)]
    public async Task Second_test_runs_on_the_same_loop()
    {
        Assert.That(TaskLocals.Require().Loop.ThreadId, Is.EqualTo(s_firstLoopThread));
        using (s_state!.CallMethod("set_result", 7)) { } // only valid on its own loop's thread
        Assert.That(await PyAwaitable.ToTask<long>(s_state), Is.EqualTo(7));
        s_state.Dispose();
    }
}
