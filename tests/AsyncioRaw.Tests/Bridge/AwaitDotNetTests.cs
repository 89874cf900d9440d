using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

/// <summary>Python awaits .NET (future_into_py), and .NET functions exposed to Python.</summary>
[TestFixture]
public class AwaitDotNetTests
{
    private static T Run<T>(Func<CancellationToken, Task<T>> body) => Asyncio.Run(body);

    [Test]
    public void Python_awaits_Task_TaskT_ValueTask_and_cancellable_work()
    {
        var r = Run(async _ =>
        {
            using var awaitIt = PythonCode.Get("await_it");
            async Task<long> Delayed() { await Task.Delay(5); return 11; }
            async Task Plain() { await Task.Delay(5); }
            using var fromTaskT = PyFuture.FromTask(Delayed());
            using var fromTask = PyFuture.FromTask(Plain());
            using var fromValueTask = PyFuture.FromValueTask(new ValueTask<long>(12));
            using var fromStart = PyFuture.Start(async ct => { await Task.Delay(5, ct); return 13L; });
            long a = await PyAwaitable.ToTask<long>(awaitIt.Call(fromTaskT));
            using var none = await PyAwaitable.ToTask(awaitIt.Call(fromTask));
            long c = await PyAwaitable.ToTask<long>(awaitIt.Call(fromValueTask));
            long d = await PyAwaitable.ToTask<long>(awaitIt.Call(fromStart));
            return (a, none.IsNone, c, d);
        });
        Assert.That(r, Is.EqualTo((11L, true, 12L, 13L)));
    }

    [Test]
    public void Dotnet_functions_are_importable_and_awaitable_from_Python_scripts()
    {
        var r = Run(async _ =>
        {
            using var module = Py.CreateModule("dotnet_tools", "", register: true);
            module.SetAttr("double_later", PyFunction.CreateAsync<long, long>("double_later", async (long x, CancellationToken ct) =>
            {
                await Task.Delay(5, ct);
                return x * 2;
            }));
            module.SetAttr("shout", PyFunction.Create<string, string>("shout", s => s.ToUpperInvariant() + "!"));
            using var script = Py.Run("""
                import dotnet_tools
                async def main():
                    return [await dotnet_tools.double_later(21), dotnet_tools.shout('hi'), dotnet_tools.double_later.__name__]
                """);
            using var main = script["main"];
            using var result = await PyAwaitable.ToTask(main.Call());
            return result.ToClr();
        });
        Assert.That(r, Is.EqualTo(new List<object?> { 42L, "HI!", "double_later" }));
    }

    [Test]
    public void A_completed_Task_costs_no_loop_iteration()
    {
        var r = Run(async _ =>
        {
            using var ready = PyFunction.CreateAsync<long, long>("ready", x => Task.FromResult(x + 1));
            using var probe = Py.Run("""
                import asyncio
                async def probe(ready):
                    ran = []
                    asyncio.get_running_loop().call_soon(ran.append, 'iteration')
                    total = 0
                    for i in range(100):
                        total += await ready(i)
                    return total, len(ran)
                """);
            using var result = await PyAwaitable.ToTask(probe["probe"].Call(ready));
            return result.ToClr();
        });
        Assert.That(r, Is.EqualTo(new object?[] { 5050L, 0L }));
    }

    [Test]
    public void Ready_values_that_are_tuples_or_exceptions_come_back_whole()
    {
        var r = Run(async _ =>
        {
            using var awaitIt = PythonCode.Get("await_it");
            using var tupleReady = PyFuture.FromTask(Task.FromResult(PyConvert.ToPython((1, 2))));
            using var excValue = Py.Eval("ValueError('as a value')");
            using var excReady = PyFuture.FromTask(Task.FromResult(excValue));
            using var t = await PyAwaitable.ToTask(awaitIt.Call(tupleReady));
            using var e = await PyAwaitable.ToTask(awaitIt.Call(excReady));
            return (t.Repr(), e.Repr());
        });
        Assert.That(r, Is.EqualTo(("(1, 2)", "ValueError('as a value')")));
    }

    [Test]
    public void Cancelling_the_Python_future_cancels_the_NET_token()
    {
        var r = Run(async _ =>
        {
            var tokenCancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            bool ranToEnd = false;
            using var slow = PyFunction.CreateAsync<double, long>("slow", async (double seconds, CancellationToken ct) =>
            {
                ct.Register(() => tokenCancelled.TrySetResult(true));
                await Task.Delay(TimeSpan.FromSeconds(seconds), ct);
                ranToEnd = true;
                return 1;
            });
            using var script = Py.Run("""
                import asyncio
                async def main(slow):
                    fut = slow(1.0)
                    fut.cancel()
                    try:
                        await fut
                        return 'not cancelled'
                    except asyncio.CancelledError:
                        return 'cancelled'
                """);
            using var outcome = await PyAwaitable.ToTask(script["main"].Call(slow));
            bool cancelledInDotNet = await tokenCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
            await Task.Delay(1200);
            return (outcome.As<string>(), cancelledInDotNet, ranToEnd);
        });
        Assert.That(r, Is.EqualTo(("cancelled", true, false)));
    }

    [Test]
    public void A_future_collected_unawaited_cancels_the_NET_token()
    {
        var cancelled = Run(async _ =>
        {
            var tokenCancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var slow = PyFunction.CreateAsync<double, long>("slow", async (double seconds, CancellationToken ct) =>
            {
                ct.Register(() => tokenCancelled.TrySetResult(true));
                await Task.Delay(TimeSpan.FromSeconds(seconds), ct);
                return 1;
            });
            using var script = Py.Run("""
                import gc
                def drop(slow):
                    slow(30.0)  # the future is dropped on the floor
                    gc.collect()
                """);
            using (script["drop"].Call(slow)) { }
            return await tokenCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
        });
        Assert.That(cancelled);
    }

    [Test]
    public void NET_exceptions_surface_in_Python_mapped_and_round_trip_as_the_same_object()
    {
        var original = new ArgumentException("bad argument from .NET");
        var r = Run(async _ =>
        {
            using var thrower = PyFunction.CreateAsync<long, long>("thrower", async (long _, CancellationToken ct) =>
            {
                await Task.Delay(1, ct);
                throw original;
            });
            using var script = Py.Run("""
                async def catch(f):
                    try:
                        await f(1)
                    except ValueError as e:
                        return [type(e).__name__, e.dotnet_type, str(e), 'thrower' in e.dotnet_stack_trace or 'MoveNext' in e.dotnet_stack_trace]
                async def passthrough(f):
                    return await f(1)
                """);
            using var caught = await PyAwaitable.ToTask(script["catch"].Call(thrower));
            Exception? back = null;
            try { using (await PyAwaitable.ToTask(script["passthrough"].Call(thrower))) { } }
            catch (Exception e) { back = e; }
            return (caught.ToClr(), back);
        });
        Assert.That(r.Item1, Is.EqualTo(new List<object?> { "DotNetValueError", "System.ArgumentException", "System.ArgumentException: bad argument from .NET", true }));
        Assert.That(r.back, Is.SameAs(original));
    }

    [Test]
    public void A_Python_exception_crossing_NET_and_back_is_the_same_object()
    {
        var same = Run(async _ =>
        {
            using var fail = PythonCode.Get("fail");
            using var relay = PyFunction.CreateAsync<PyObject, long>("relay", async (PyObject f, CancellationToken ct) =>
                await PyAwaitable.ToTask<long>(f.Call("from python"), ct));
            using var script = Py.Run("""
                async def main(relay, fail):
                    try:
                        await relay(fail)
                    except ValueError as e:
                        return e
                """);
            // The traceback shows both Python frames; the object identity is checked in Python.
            using var exc = await PyAwaitable.ToTask(script["main"].Call(relay, fail));
            return exc.TypeName == "ValueError" && exc.ToString() == "from python";
        });
        Assert.That(same);
    }

    [Test]
    public void Synchronous_NET_function_exceptions_become_Python_exceptions()
    {
        using var boom = PyFunction.Create<long, long>("boom", _ => throw new TimeoutException("too slow"));
        using var script = Py.Run("""
            def call(f):
                try:
                    f(1)
                except TimeoutError as e:
                    return 'TimeoutError: ' + str(e)
            def wrong_arity(f):
                try:
                    f(1, 2)
                except Exception as e:
                    return f'{type(e).__name__}: {e}'
            """);
        Assert.That(script["call"].Call(boom).As<string>(), Is.EqualTo("TimeoutError: System.TimeoutException: too slow"));
        // A wrong call is Python's own TypeError, worded as for a def.
        Assert.That(script["wrong_arity"].Call(boom).As<string>(), Is.EqualTo("TypeError: boom() takes 1 positional argument but 2 were given"));
    }

    [Test]
    public void Plain_Python_asyncio_run_can_await_NET_work()
    {
        using var delay = PyFunction.CreateAsync<long, long>("delay", async (long x, CancellationToken ct) =>
        {
            await Task.Delay(5, ct);
            return x + 1;
        });
        using var script = Py.Run("""
            import asyncio
            async def main(f):
                return await f(1) + await f(2)
            def run_twice(f):
                a = asyncio.run(main(f))
                loop = asyncio.new_event_loop()
                try:
                    b = loop.run_until_complete(main(f))
                finally:
                    loop.close()
                return a + b
            """);
        using var r = script["run_twice"].Call(delay);
        Assert.That(r.As<long>(), Is.EqualTo(10));
    }

    // The loop a .NET function binds to is cached while Asyncio.Run's loop runs this thread; after
    // it, a loop Python runs on the same thread must be found again, not the closed one.
    [Test]
    public void A_NET_function_binds_to_the_loop_running_now_before_and_after_Asyncio_Run()
    {
        using var whichLoop = PyFunction.CreateAsync<long, PyObject>("which_loop", async (long x, CancellationToken ct) =>
        {
            var loop = TaskLocals.Current!.Loop.Loop;
            await Task.Delay(1, ct);
            return loop;
        });
        using var script = Py.Run("""
            import asyncio
            async def same(f):
                return (await f(0)) is asyncio.get_running_loop()
            def python_runs(f):
                return asyncio.run(same(f))
            """);
        using var same = script["same"];
        using var pythonRuns = script["python_runs"];
        Assert.That(pythonRuns.Call(whichLoop).As<bool>(), Is.True);
        Assert.That(Run(async _ => await PyAwaitable.ToTask<bool>(same.Call(whichLoop))), Is.True);
        Assert.That(pythonRuns.Call(whichLoop).As<bool>(), Is.True);
        Assert.That(Run(async _ => await PyAwaitable.ToTask<bool>(same.Call(whichLoop))), Is.True);
    }
}

[TestFixture]
public class AwaitDotNetRegressionTests
{
    // Regression: a result with no Python form used to leave the future pending forever (and
    // Asyncio.Run converted its main's result to Python for no reason, hanging on such results).
    [Test]
    public void A_result_with_no_Python_form_fails_the_future_instead_of_leaving_it_pending()
    {
        var r = Asyncio.Run(async _ =>
        {
            using var unconvertible = PyFuture.FromTask(Task.Run(async () => { await Task.Delay(5); return new object(); }));
            using var script = Py.Run("""
                async def main(f):
                    try:
                        await f
                    except Exception as e:
                        return type(e).__name__
                """);
            using var outcome = await PyAwaitable.ToTask(script["main"].Call(unconvertible));
            return (outcome.As<string>(), new object()); // and Run itself returns a value with no Python form
        });
        Assert.That(r.Item1, Is.EqualTo("DotNetValueError"));
    }
}
