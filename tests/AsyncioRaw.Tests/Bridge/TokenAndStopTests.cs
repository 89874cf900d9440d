using System.Diagnostics;
using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

/// <summary>Tokens where users expect them (Asyncio.Run, await pyObject, stopping an
/// EventLoopThread), and the error for blocking on the loop thread.</summary>
[TestFixture]
public class TokenAndStopTests
{
    private const string Source = """
        import asyncio, time

        seen = []

        async def wait_long():
            try:
                await asyncio.sleep(30)
                return 'finished'
            except asyncio.CancelledError:
                seen.append('CancelledError')
                raise

        def start_stubborn_task(seconds):
            # A task that swallows every CancelledError until its time is up.
            async def stubborn():
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    try:
                        await asyncio.sleep(0.01)
                    except asyncio.CancelledError:
                        seen.append('swallowed')
                seen.append('stubborn done')
            global stubborn_task
            stubborn_task = asyncio.get_running_loop().create_task(stubborn())

        def block_in_callback(seconds):
            asyncio.get_running_loop().call_soon(time.sleep, seconds)
        """;

    private static readonly Lazy<PyObject> s_globals = new(() => Py.Run(Source, fileName: "token_tests.py"));

    private static PyObject Get(string name) => s_globals.Value[name];

    private static List<string> Seen()
    {
        using var seen = Get("seen");
        return ((List<object?>)seen.ToClr()!).Cast<string>().ToList();
    }

    [SetUp]
    public void ClearSeen()
    {
        using var seen = Get("seen");
        using (seen.CallMethod("clear")) { }
    }

    [Test]
    public void Run_with_a_token_cancelled_elsewhere_cancels_the_main_on_the_loop_thread()
    {
        using var external = new CancellationTokenSource();
        int loopThread = 0, cancelledOn = 0;
        var e = Assert.Throws<OperationCanceledException>(() => Asyncio.Run(async ct =>
        {
            loopThread = Environment.CurrentManagedThreadId;
            ct.Register(() => cancelledOn = Environment.CurrentManagedThreadId);
            _ = Task.Run(async () => { await Task.Delay(100); external.Cancel(); }); // another thread
            using var wait = Get("wait_long");
            using var coroutine = wait.Call();
            using var r = await coroutine.AsTask(ct);
        }, external.Token));
        Assert.That(e!.CancellationToken, Is.EqualTo(external.Token), "the exception names the caller's token");
        Assert.That(e.InnerException, Is.InstanceOf<OperationCanceledException>());
        Assert.That(cancelledOn, Is.EqualTo(loopThread), "the main's token was not cancelled on the loop thread");
        Assert.That(Seen(), Is.EqualTo(new[] { "CancelledError" }), "the Python side was not cancelled");
    }

    [Test]
    public void Run_with_a_token_returns_the_result_of_a_main_that_finishes_anyway()
    {
        using var external = new CancellationTokenSource();
        var r = Asyncio.Run(async ct =>
        {
            external.Cancel(); // same thread: the main's token is cancelled at the loop's next turn
            await Task.Delay(50, CancellationToken.None);
            return ct.IsCancellationRequested ? "finished, cancelled" : "finished, not cancelled";
        }, external.Token);
        Assert.That(r, Is.EqualTo("finished, cancelled"));
    }

    [Test]
    public void Run_with_a_token_already_cancelled_throws_without_running_the_main()
    {
        bool ran = false;
        var e = Assert.Throws<OperationCanceledException>(() => Asyncio.Run(_ => { ran = true; return Task.CompletedTask; }, new CancellationToken(true)));
        Assert.That(ran, Is.False);
        Assert.That(e!.CancellationToken.IsCancellationRequested);
    }

    [Test]
    public void AsTask_with_a_token_cancels_the_Python_task_and_ends_canceled()
    {
        var (outcome, value) = Asyncio.Run(async _ =>
        {
            using var sleep0 = PythonCode.Get("sleep0");
            using var quick = sleep0.Call(5);
            long value = await quick.AsTask<long>(); // converted, no token
            using var wait = Get("wait_long");
            using var coroutine = wait.Call();
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            var task = coroutine.AsTask(cts.Token);
            try
            {
                using var r = await task;
                return ("completed", value);
            }
            catch (OperationCanceledException)
            {
                return (task.Status.ToString(), value);
            }
        });
        Assert.That(outcome, Is.EqualTo("Canceled"));
        Assert.That(value, Is.EqualTo(5));
        Assert.That(Seen(), Is.EqualTo(new[] { "CancelledError" }));
    }

    [Test]
    public async Task StopAsync_with_a_timeout_returns_false_while_a_callback_blocks_and_the_loop_stops_later()
    {
        var host = new EventLoopThread();
        using var block = Get("block_in_callback");
        await host.RunAsync(_ =>
        {
            using (block.Call(3.0)) { }
            return Task.CompletedTask;
        });
        var sw = Stopwatch.StartNew();
        bool stopped = await host.StopAsync(TimeSpan.FromMilliseconds(200));
        var waited = sw.Elapsed;
        Assert.That(stopped, Is.False, "the loop cannot have stopped: its thread is in time.sleep");
        Assert.That(waited, Is.LessThan(TimeSpan.FromSeconds(2.5)), "StopAsync did not return at its timeout");
        // The state it is left in: stopping, refusing work, not yet closed.
        Assert.That(host.Stopping.IsCancellationRequested);
        Assert.That(host.Loop.IsClosed, Is.False);
        Assert.That(host.Stopped.IsCompleted, Is.False);
        Assert.Throws<ObjectDisposedException>(() => host.RunAsync(_ => Task.FromResult(0)));
        await host.Stopped.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.That(host.Loop.IsClosed);
        Assert.That(await host.StopAsync(TimeSpan.Zero), Is.True);
        await host.DisposeAsync(); // nothing left to do
    }

    [Test]
    public async Task StopAsync_with_a_token_leaves_a_task_that_swallows_cancellation_to_finish()
    {
        var host = new EventLoopThread();
        using var start = Get("start_stubborn_task");
        await host.RunAsync(_ =>
        {
            using (start.Call(3.0)) { }
            return Task.CompletedTask;
        });
        using var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var sw = Stopwatch.StartNew();
        Assert.That(async () => await host.StopAsync(giveUp.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2.5)), "StopAsync did not give up with its token");
        Assert.That(host.Loop.IsClosed, Is.False, "the shutdown waits for the task, as asyncio.run does");
        Assert.Throws<ObjectDisposedException>(() => host.RunAsync(_ => Task.FromResult(0)));
        Assert.That(await host.StopAsync(TimeSpan.FromSeconds(20)), Is.True);
        Assert.That(host.Loop.IsClosed);
        var seen = Seen();
        Assert.That(seen, Does.Contain("swallowed"));
        Assert.That(seen.Last(), Is.EqualTo("stubborn done"));
    }

    [Test]
    public void StopAsync_refuses_a_negative_timeout_without_stopping()
    {
        using var host = new EventLoopThread();
        Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => host.StopAsync(TimeSpan.FromSeconds(-2)));
        Assert.That(host.Stopping.IsCancellationRequested, Is.False);
    }

    [Test]
    public void Blocking_on_the_loop_thread_surfaces_as_LoopBlockedException_from_Run()
    {
        var e = Assert.Throws<LoopBlockedException>(() => Asyncio.Run(async _ =>
        {
            await Task.Yield();
            using var sleep0 = PythonCode.Get("sleep0");
            using var coroutine = sleep0.Call(1);
            var task = coroutine.AsTask<long>();
            try
            {
                return task.Result; // deliberately blocks the loop thread
            }
            finally
            {
                await task; // let it finish, so the loop ends without a pending task
            }
        }));
        Assert.That(e!.Message, Does.Contain("would deadlock").And.Contain("Use 'await'"));
        Assert.That(e.StackTrace, Does.Contain(nameof(Blocking_on_the_loop_thread_surfaces_as_LoopBlockedException_from_Run)),
            "the stack trace does not show the blocking call");
    }

    [Test]
    public async Task Blocking_on_the_loop_thread_surfaces_as_LoopBlockedException_from_RunAsync()
    {
        await using var host = new EventLoopThread();
        using var sleep0 = PythonCode.Get("sleep0");
        try
        {
            await host.RunAsync(async _ =>
            {
                using var coroutine = sleep0.Call(1);
                var task = coroutine.AsTask<long>();
                try { return task.Result; }
                finally { await task; }
            });
            Assert.Fail("blocking on the loop thread did not throw");
        }
        catch (LoopBlockedException e)
        {
            Assert.That(e.Message, Does.Contain("would deadlock"));
        }
    }

    [Test]
    public void Blocking_on_the_loop_thread_reaches_Python_with_the_useful_message()
    {
        var message = Asyncio.Run(async _ =>
        {
            using var sleep0 = PythonCode.Get("sleep0");
            using var blocking = PyFunction.CreateAsync<long, long>("blocking", async (long x, CancellationToken ct) =>
            {
                await Task.Yield();
                using var coroutine = sleep0.Call(x);
                var task = coroutine.AsTask<long>();
                try { return task.Result; }
                finally { await task; }
            });
            using var awaitIt = PythonCode.Get("call_net");
            using var call = awaitIt.Call(blocking, 1L);
            try
            {
                using var r = await call.AsTask();
                return "no exception";
            }
            catch (Exception e)
            {
                return $"{e.GetType().Name}: {e.Message}";
            }
        });
        Assert.That(message, Does.StartWith(nameof(LoopBlockedException)).And.Contain("would deadlock"));
    }
}
