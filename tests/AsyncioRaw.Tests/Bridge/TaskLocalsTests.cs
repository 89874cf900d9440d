using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

[TestFixture]
public class TaskLocalsTests
{
    [Test]
    public void Context_variables_flow_from_Python_through_NET_into_awaited_and_synchronous_Python()
    {
        var r = Asyncio.Run(async _ =>
        {
            using var readVar = PythonCode.Get("read_var");
            using var readVarSync = PythonCode.Get("read_var_sync");
            using var bridge = PyFunction.CreateAsync<long, PyObject>("bridge", async (long _, CancellationToken ct) =>
            {
                await Task.Delay(5, ct); // resume later, from a loop callback outside the Python task
                using var fromCoroutine = await PyAwaitable.ToTask(readVar.Call(), ct);
                using var fromSync = readVarSync.Call();
                return PyConvert.ToPython(new[] { fromCoroutine.As<string>(), fromSync.As<string>(), TaskLocals.Current is null ? "no locals" : "locals" });
            });
            using var setAndCall = PythonCode.Get("set_var_and_call");
            using var first = await PyAwaitable.ToTask(setAndCall.Call("first", bridge, 0));
            using var second = await PyAwaitable.ToTask(setAndCall.Call("second", bridge, 0));
            using var outside = readVarSync.Call();
            return (first.ToClr(), second.ToClr(), outside.As<string>());
        });
        Assert.That(r.Item1, Is.EqualTo(new List<object?> { "first", "first", "locals" }));
        Assert.That(r.Item2, Is.EqualTo(new List<object?> { "second", "second", "locals" }));
        Assert.That(r.Item3, Is.EqualTo("unset"));
    }

    [Test]
    public void The_running_loop_flows_with_NET_async_code()
    {
        var same = Asyncio.Run(async _ =>
        {
            var outer = TaskLocals.Require().Loop;
            await Task.Delay(1).ConfigureAwait(false); // even on the thread pool, the locals flow
            return ReferenceEquals(TaskLocals.Current?.Loop, outer);
        });
        Assert.That(same);
    }

    [Test]
    public void Outside_any_loop_Require_names_the_fix()
    {
        var e = Assert.Throws<InvalidOperationException>(() => TaskLocals.Require());
        Assert.That(e!.Message, Does.Contain("Asyncio.Run").And.Contain("pass the EventLoop"));
    }
}

[TestFixture]
public class DeferredReleaseOnLoopTests
{
    // Regression: references released by the finalizer were only drained when some thread took
    // the GIL from scratch; a loop thread holds it for the whole Asyncio.Run, so they piled up.
    [Test]
    public void References_dropped_without_Dispose_are_released_while_a_loop_runs()
    {
        var left = Asyncio.Run(async ct =>
        {
            using var sentinel = Py.Eval("object()");
            using var sys = Py.Import("sys");
            using var getrefcount = sys.GetAttr("getrefcount");
            long before = getrefcount.Call<PyObject, long>(sentinel);
            DropReferences(sentinel, 1000);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            using var sleep0 = PythonCode.Get("sleep0");
            for (int i = 0; i < 3; i++) using (await PyAwaitable.ToTask(sleep0.Call(i))) { } // callbacks come and go
            return getrefcount.Call<PyObject, long>(sentinel) - before;
        });
        Assert.That(left, Is.EqualTo(0));
    }

    // Not inlined, so no reference stays live in the async state machine.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void DropReferences(PyObject o, int count)
    {
        for (int i = 0; i < count; i++) _ = o.NewReference();
    }
}
