using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

/// <summary>
/// .NET code that a Python task runs awaits a coroutine directly (<c>await PyAwaitable.Of&lt;T&gt;</c>,
/// <c>await pyObject</c>): it runs inside that task, as Python's own await would; stored Tasks
/// (ToTask) keep a Task of their own.
/// </summary>
[TestFixture]
public class DirectAwaitTests
{
    private const string Source = """
        import asyncio, contextvars
        var = contextvars.ContextVar('var', default='unset')
        log = []

        async def task_id():
            return id(asyncio.current_task())

        async def task_id_later():
            await asyncio.sleep(0)
            return id(asyncio.current_task())

        async def set_var(value):
            var.set(value)
            return value

        async def get_var():
            await asyncio.sleep(0)
            return var.get()

        async def boom():
            await asyncio.sleep(0)
            raise ValueError('boom from python')

        async def sleeps_long():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                log.append('inner cancelled')
                raise
            return 'not cancelled'

        async def add1(x):
            return x + 1

        async def py_level(dotnet_level, d, ids):
            ids.add(id(asyncio.current_task()))
            if d == 0:
                return 0
            return await dotnet_level(d - 1, ids) + 1

        async def caller_sees_var(f):
            var.set('from caller')
            got = await f()
            return got, var.get()

        async def cancel_it(f):
            t = asyncio.ensure_future(f())
            await asyncio.sleep(0.05)
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                return 'task cancelled'
            return 'task not cancelled'

        async def await_f(f):
            return await f()

        async def drop_it(f):
            aw = f()
            del aw
            for _ in range(5):
                await asyncio.sleep(0)
            return 'dropped'
        """;

    private static PyObject? s_globals;
    private static PyObject G(string name) => (s_globals ??= Py.Run(Source))[name];

    [SetUp]
    public void Reset()
    {
        using var log = G("log");
        using (log.CallMethod("clear")) { }
    }

    [Test]
    public void Direct_awaits_of_the_main_run_in_its_task_and_ToTask_in_tasks_of_their_own()
    {
        var (a, b, later, viaTask) = Asyncio.Run(async _ =>
        {
            using var taskId = G("task_id");
            using var taskIdLater = G("task_id_later");
            long a = await PyAwaitable.Of<long>(taskId.Call());
            using var bObj = await taskId.Call();
            long later = await PyAwaitable.Of<long>(taskIdLater.Call());
            long viaTask = await PyAwaitable.ToTask<long>(taskId.Call());
            return (a, bObj.As<long>(), later, viaTask);
        });
        Assert.That(b, Is.EqualTo(a));
        Assert.That(later, Is.EqualTo(a));
        Assert.That(viaTask, Is.Not.EqualTo(a));
    }

    [Test]
    public void A_direct_await_shares_the_context_of_its_task_as_Pythons_await_does()
    {
        var r = Asyncio.Run(async _ =>
        {
            using var setVar = G("set_var");
            using var getVar = G("get_var");
            using var set = await setVar.Call("set by a direct await");
            string direct = await PyAwaitable.Of<string>(getVar.Call());
            // From a .NET function Python awaits: the caller's variables, and what the awaited
            // coroutine sets is the caller's too afterwards.
            using var f = PyFunction.CreateAsync("f", async (_, _) =>
            {
                string seen = await PyAwaitable.Of<string>(getVar.Call());
                using var s = await setVar.Call("set inside .NET");
                return seen;
            });
            using var pair = await PyAwaitable.ToTask(G("caller_sees_var").Call(f));
            return (direct, pair.ToClr());
        });
        Assert.That(r.direct, Is.EqualTo("set by a direct await"));
        Assert.That(r.Item2, Is.EqualTo(new object?[] { "from caller", "set inside .NET" }));
    }

    [Test]
    public void Cancelling_the_task_is_thrown_into_the_innermost_await()
    {
        var seen = new List<string>();
        var r = Asyncio.Run(async _ =>
        {
            using var sleepsLong = G("sleeps_long");
            using var f = PyFunction.CreateAsync("f", async (_, _) =>
            {
                try { return await PyAwaitable.Of<string>(sleepsLong.Call()); }
                catch (PythonCancelledException) { seen.Add(".NET saw the cancellation"); throw; }
            });
            return await PyAwaitable.Of<string>(G("cancel_it").Call(f));
        });
        using var log = G("log");
        Assert.That(r, Is.EqualTo("task cancelled"));
        Assert.That(log.ToClr(), Is.EqualTo(new List<object?> { "inner cancelled" }));
        Assert.That(seen, Is.EqualTo(new[] { ".NET saw the cancellation" }));
    }

    [Test]
    public void A_Python_exception_reaches_NET_with_its_traceback_and_Python_again_as_the_same_object()
    {
        var r = Asyncio.Run(async _ =>
        {
            using var boom = G("boom");
            string? traceback = null, type = null;
            try { await PyAwaitable.Of<long>(boom.Call()); }
            catch (PythonException e) { type = e.PythonTypeName; traceback = e.PythonTraceback; }
            using var f = PyFunction.CreateAsync("f", async (_, _) => (object?)await PyAwaitable.Of<long>(boom.Call()));
            using var check = Py.Run("""
                import traceback
                async def check(f):
                    try:
                        await f()
                    except ValueError as e:
                        return str(e), 'boom' in [fr.name for fr in traceback.extract_tb(e.__traceback__)]
                """);
            using var result = await PyAwaitable.ToTask(check["check"].Call(f));
            return (type, traceback, result.ToClr());
        });
        Assert.That(r.type, Is.EqualTo("ValueError"));
        Assert.That(r.traceback, Does.Contain("boom"));
        Assert.That(r.Item3, Is.EqualTo(new object?[] { "boom from python", true }));
    }

    [TestCase(50, 1)]
    [TestCase(200, -1)] // deeper than the driver nests: the rest take Tasks of their own, still correct
    public void Nested_ping_pong_runs_in_one_task(int depth, int expectedTasks)
    {
        var (levels, tasks) = Asyncio.Run(async _ =>
        {
            using var pyLevel = G("py_level");
            PyObject? dotnetLevel = null;
            dotnetLevel = PyFunction.CreateAsync("dotnet_level", async (args, _) =>
            {
                long d = (long)args[0]!;
                using var ids = (PyObject)args[1]!;
                if (d == 0) return (object?)0L;
                using var c = pyLevel.Call(dotnetLevel, d - 1, ids);
                return await PyAwaitable.Of<long>(c) + 1;
            });
            using var ids = Py.Run("ids = set()")["ids"];
            using (dotnetLevel)
            {
                long levels = await PyAwaitable.Of<long>(pyLevel.Call(dotnetLevel, depth, ids));
                using var count = ids.CallMethod("__len__");
                return (levels, count.As<long>());
            }
        });
        Assert.That(levels, Is.EqualTo(depth));
        if (expectedTasks > 0) Assert.That(tasks, Is.EqualTo(expectedTasks));
        else Assert.That(tasks, Is.GreaterThan(1));
    }

    [Test]
    public void Stored_Tasks_concurrent_awaits_and_awaits_after_other_NET_work_still_complete()
    {
        var r = Asyncio.Run(async _ =>
        {
            using var add1 = G("add1");
            using var taskIdLater = G("task_id_later");
            var stored = PyAwaitable.ToTask<long>(add1.Call(1));
            async Task<long> Lambda(long x) => await PyAwaitable.Of<long>(add1.Call(x));
            var all = await Task.WhenAll(Lambda(10), Lambda(20), stored);
            await Task.Delay(1); // resumed from the loop's queue: outside the task, so a Task of its own
            long afterDelay = await PyAwaitable.Of<long>(add1.Call(100));
            // A .NET function that waits for .NET work first, then awaits Python directly.
            using var f = PyFunction.CreateAsync("f", async (_, _) =>
            {
                await Task.Delay(1);
                return (object?)await PyAwaitable.Of<long>(add1.Call(1000));
            });
            long fromF = await PyAwaitable.Of<long>(G("await_f").Call(f));
            return (all.Sum(), afterDelay, fromF);
        });
        Assert.That(r, Is.EqualTo((11L + 21L + 2L, 101L, 1001L)));
    }

    [Test]
    public void A_NET_function_awaitable_dropped_unawaited_ends_its_direct_await()
    {
        var outcome = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var r = Asyncio.Run(async _ =>
        {
            using var sleepsLong = G("sleeps_long");
            using var f = PyFunction.CreateAsync("f", async (_, ct) =>
            {
                try
                {
                    await PyAwaitable.Of<string>(sleepsLong.Call());
                    outcome.TrySetResult("completed");
                }
                catch (OperationCanceledException) { outcome.TrySetResult($"canceled, token {ct.IsCancellationRequested}"); }
                return null;
            });
            string dropped = await PyAwaitable.Of<string>(G("drop_it").Call(f));
            return (dropped, await outcome.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        });
        Assert.That(r, Is.EqualTo(("dropped", "canceled, token True")));
    }
}
