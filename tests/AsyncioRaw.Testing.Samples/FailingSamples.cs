using AsyncioRaw;
using AsyncioRaw.Testing;
using NUnit.Framework;

namespace AsyncioRaw.Testing.Samples;

[TestFixture]
public class FailingSamples
{
    private static PyObject Code(string source) => Py.Run(source, fileName: "failing_samples.py");

    [AsyncioTest]
    public async Task Python_exception_fails_the_test()
    {
        using var g = Code("async def boom():\n    raise KeyError('missing key')\n");
        using (await PyAwaitable.ToTask(g["boom"].Call())) { }
    }

    [AsyncioTest]
    public async Task Pending_task_fails_the_test()
    {
        using var g = Code("import asyncio\nasync def forever():\n    await asyncio.sleep(3600)\n");
        using var asyncio = Py.Import("asyncio");
        using var task = asyncio.CallMethod("ensure_future", g["forever"].Call());
        await Task.Yield();
    }

    [AsyncioTest]
    public async Task Never_retrieved_exception_fails_the_test()
    {
        using var g = Code("import asyncio\nasync def fails():\n    raise ValueError('nobody looked')\n");
        using var asyncio = Py.Import("asyncio");
        using (var task = asyncio.CallMethod("ensure_future", g["fails"].Call())) { }
        using (await PyAwaitable.ToTask(asyncio.CallMethod("sleep", 0.01))) { }
    }

    [AsyncioTest]
    public async Task Assertion_failure_is_an_ordinary_failure()
    {
        await Task.Yield();
        Assert.That(1, Is.EqualTo(2));
    }

    [AsyncioTest]
    public async Task Passing_test_passes()
    {
        using var asyncio = Py.Import("asyncio");
        using (await PyAwaitable.ToTask(asyncio.CallMethod("sleep", 0))) { }
    }
}
