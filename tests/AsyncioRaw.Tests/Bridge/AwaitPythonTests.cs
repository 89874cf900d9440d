using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

/// <summary>.NET awaits Python (into_future), inside Asyncio.Run on the test thread.</summary>
[TestFixture]
public class AwaitPythonTests
{
    private static T Run<T>(Func<CancellationToken, Task<T>> body) => Asyncio.Run(body);

    [Test]
    public void Coroutine_converts_and_completes()
    {
        var r = Run(async _ =>
        {
            using var add1 = PythonCode.Get("add1");
            using var sleep0 = PythonCode.Get("sleep0");
            long a = await PyAwaitable.ToTask<long>(add1.Call(41));
            using var b = await sleep0.Call(7); // 'await pyObject' directly
            return a + b.As<long>();
        });
        Assert.That(r, Is.EqualTo(49));
    }

    [Test]
    public void Futures_tasks_generator_coroutines_and_await_objects_all_convert()
    {
        var r = Run(async _ =>
        {
            using var sleepFor = PythonCode.Get("sleep_for");
            using var coroutine = sleepFor.Call(0.01, 5);
            using var asyncio = Py.Import("asyncio");
            using var task = asyncio.CallMethod("ensure_future", coroutine); // an asyncio.Task
            using var gen = PythonCode.Get("generator_based");
            using var custom = PythonCode.Get("CustomAwaitable");
            using var doneFuture = PythonCode.Get("done_future");
            using var loop = asyncio.CallMethod("get_running_loop");
            using var executorFuture = loop.CallMethod("run_in_executor", Py.None, Py.Eval("lambda: 3")); // a Future, not a coroutine
            long fromTask = await PyAwaitable.ToTask<long>(task);
            long fromGen = await PyAwaitable.ToTask<long>(gen.Call(4));
            long fromCustom = await PyAwaitable.ToTask<long>(custom.Call(1));
            long fromFuture = await PyAwaitable.ToTask<long>(doneFuture.Call(6));
            long fromExecutor = await PyAwaitable.ToTask<long>(executorFuture);
            return (fromTask, fromGen, fromCustom, fromFuture, fromExecutor);
        });
        Assert.That(r, Is.EqualTo((5L, 40L, 1001L, 6L, 3L)));
    }

    // Found by the stress run: before 3.12 the await's task takes its first step one loop
    // iteration later, and a cancel before that step throws into run_and_report before its try
    // block, so nothing reported and the .NET task hung forever.
    [Test]
    public void Cancelling_before_the_first_step_cancels_the_task()
    {
        var outcome = Run(async _ =>
        {
            using var sleep0 = PythonCode.Get("sleep0");
            using var cts = new CancellationTokenSource();
            var task = PyAwaitable.ToTask<long>(sleep0.Call(1), cts.Token);
            cts.Cancel(); // same loop callback: the Python task has not stepped yet (before 3.12)
            var first = await Task.WhenAny(task, Task.Delay(5000));
            return first == task ? task.Status.ToString() : "hung";
        });
        Assert.That(outcome, Is.EqualTo("Canceled").Or.EqualTo("RanToCompletion")); // 3.12+ may finish eagerly
    }

    [Test]
    public void An_already_done_future_gives_an_already_completed_task()
    {
        Run(async _ =>
        {
            using var doneFuture = PythonCode.Get("done_future");
            using var future = doneFuture.Call(1);
            var task = PyAwaitable.ToTask<long>(future);
            Assert.That(task.IsCompletedSuccessfully, "no loop iteration should be needed");
            return await task;
        });
    }

    [Test]
    public void Result_is_a_new_reference_owned_by_the_caller()
    {
        Run(async _ =>
        {
            using var awaitIt = PythonCode.Get("await_it");
            using var doneFuture = PythonCode.Get("done_future");
            using var sentinel = Py.Eval("object()");
            using var sys = Py.Import("sys");
            using var getrefcount = sys.GetAttr("getrefcount");
            long before = getrefcount.Call<PyObject, long>(sentinel);
            var future = doneFuture.Call(sentinel);
            var result = await PyAwaitable.ToTask(future);
            Assert.That(result.DangerousGetHandle(), Is.EqualTo(sentinel.DangerousGetHandle()));
            Assert.That(getrefcount.Call<PyObject, long>(sentinel), Is.EqualTo(before + 2)); // the future's result and ours
            result.Dispose();
            future.Dispose();
            Assert.That(getrefcount.Call<PyObject, long>(sentinel), Is.EqualTo(before));
            return 0;
        });
    }

    [Test]
    public void Python_exception_arrives_with_type_message_and_traceback()
    {
        var e = Assert.Throws<PythonException>(() => Run<long>(async _ =>
        {
            using var fail = PythonCode.Get("fail");
            return await PyAwaitable.ToTask<long>(fail.Call("async failure"));
        }));
        Assert.That(e!.PythonTypeName, Is.EqualTo("ValueError"));
        Assert.That(e.PythonMessage, Is.EqualTo("async failure"));
        Assert.That(e.PythonTraceback, Does.Contain("bridge_tests.py").And.Contain("in fail"));
    }

    [Test]
    public void Cancelling_the_token_cancels_the_Python_task()
    {
        using var seen = PythonCode.Get("cancelled_seen");
        using (seen.CallMethod("clear")) { }
        var outcome = Run(async _ =>
        {
            using var cancellable = PythonCode.Get("cancellable");
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            var task = PyAwaitable.ToTask<string>(cancellable.Call(30.0), cts.Token);
            try
            {
                await task;
                return "completed";
            }
            catch (OperationCanceledException)
            {
                return task.IsCanceled ? "canceled" : "faulted";
            }
        });
        Assert.That(outcome, Is.EqualTo("canceled"));
        Assert.That(seen.Length, Is.EqualTo(1), "the Python coroutine did not see CancelledError");
    }

    [Test]
    public void Python_side_cancellation_is_a_canceled_task()
    {
        var outcome = Run(async _ =>
        {
            using var sleepFor = PythonCode.Get("sleep_for");
            using var asyncio = Py.Import("asyncio");
            using var task = asyncio.CallMethod("ensure_future", sleepFor.Call(30.0, 1));
            var net = PyAwaitable.ToTask(task);
            using (task.CallMethod("cancel")) { }
            try { await net; return "completed"; }
            catch (OperationCanceledException) { return net.IsCanceled ? "canceled" : "faulted"; }
        });
        Assert.That(outcome, Is.EqualTo("canceled"));
    }

    [Test]
    public void Continuations_resume_on_the_loop_thread_and_ConfigureAwait_false_leaves_it()
    {
        var r = Run(async _ =>
        {
            int loopThread = Environment.CurrentManagedThreadId;
            using var sleep0 = PythonCode.Get("sleep0");
            await PyAwaitable.ToTask(sleep0.Call(1));
            bool resumedOnLoop = Environment.CurrentManagedThreadId == loopThread;
            await Task.Delay(5); // a .NET timer completes elsewhere: posted back through the loop
            bool backAfterDelay = Environment.CurrentManagedThreadId == loopThread;
            await PyAwaitable.ToTask(sleep0.Call(2)).ConfigureAwait(false);
            bool leftLoop = Environment.CurrentManagedThreadId != loopThread;
            return (resumedOnLoop, backAfterDelay, leftLoop);
        });
        Assert.That(r, Is.EqualTo((true, true, true)));
    }

    [Test]
    public void Blocking_on_a_Python_awaitable_from_the_loop_thread_throws_instead_of_deadlocking()
    {
        var message = Run(async ct =>
        {
            using var sleep0 = PythonCode.Get("sleep0");
            var task = PyAwaitable.ToTask<long>(sleep0.Call(1));
            string? error = null;
            try { _ = task.Result; }
            catch (Exception e) { error = e.InnerException?.Message ?? e.Message; }
            await task; // still usable afterwards
            return error;
        });
        Assert.That(message, Does.Contain("would deadlock"));
    }

    [Test]
    public void Without_a_loop_the_error_names_the_fix()
    {
        using var add1 = PythonCode.Get("add1");
        using var coroutine = add1.Call(1);
        var e = Assert.Throws<InvalidOperationException>(() => PyAwaitable.ToTask(coroutine));
        Assert.That(e!.Message, Does.Contain("Asyncio.Run").And.Contain("EventLoopThread"));
        using (coroutine.CallMethod("close")) { }
    }

    [Test]
    public void Several_loops_run_one_after_another_on_one_thread()
    {
        for (int i = 0; i < 3; i++)
        {
            long r = Run(async _ =>
            {
                using var sleep0 = PythonCode.Get("sleep0");
                return await PyAwaitable.ToTask<long>(sleep0.Call(i));
            });
            Assert.That(r, Is.EqualTo(i));
        }
    }

    [Test]
    public void RunUntilComplete_uses_a_given_loop_and_leaves_it_open()
    {
        using var asyncio = Py.Import("asyncio");
        using var loop = asyncio.CallMethod("new_event_loop");
        try
        {
            long a = Asyncio.RunUntilComplete(loop, async _ =>
            {
                using var sleep0 = PythonCode.Get("sleep0");
                return await PyAwaitable.ToTask<long>(sleep0.Call(3));
            });
            long b = Asyncio.RunUntilComplete(loop, _ => Task.FromResult(4L));
            Assert.That(a + b, Is.EqualTo(7));
            Assert.That(loop.CallMethod("is_closed").As<bool>(), Is.False);
        }
        finally
        {
            using (loop.CallMethod("close")) { }
        }
    }

    [Test]
    public void Run_shuts_the_loop_down_like_asyncio_run()
    {
        using var state = Py.Run("""
            import asyncio
            finalized = []
            async def agen():
                try:
                    yield 1
                    yield 2
                finally:
                    finalized.append('agen')
            """);
        PyObject? loopSeen = null;
        Asyncio.Run(async _ =>
        {
            using var agen = state["agen"].Call();
            using var first = await agen.CallMethod("__anext__"); // left suspended: shutdown_asyncgens must close it
            using var asyncio = Py.Import("asyncio");
            loopSeen = asyncio.CallMethod("get_running_loop");
            using var executor = loopSeen.CallMethod("run_in_executor", Py.None, Py.Eval("lambda: None"));
            await executor;
            return 0;
        });
        Assert.That(state["finalized"].ToClr(), Is.EqualTo(new List<object?> { "agen" }));
        Assert.That(loopSeen!.CallMethod("is_closed").As<bool>());
        loopSeen.Dispose();
    }
}
