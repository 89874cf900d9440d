namespace AsyncioRaw.Tests.Bridge;

/// <summary>Python code shared by the bridge tests, run once into its own globals.</summary>
internal static class PythonCode
{
    private const string Source = """
        import asyncio, contextvars, types, gc

        var = contextvars.ContextVar('var', default='unset')

        async def add1(x):
            return x + 1

        async def sleep0(x):
            await asyncio.sleep(0)
            return x

        async def sleep_for(seconds, value):
            await asyncio.sleep(seconds)
            return value

        async def fail(message):
            await asyncio.sleep(0)
            raise ValueError(message)

        async def read_var():
            await asyncio.sleep(0)
            return var.get()

        def read_var_sync():
            return var.get()

        @types.coroutine
        def generator_based(x):
            yield
            return x * 10

        class CustomAwaitable:
            def __init__(self, x):
                self.x = x
            def __await__(self):
                yield from asyncio.sleep(0).__await__()
                return self.x + 1000

        def done_future(value):
            f = asyncio.get_running_loop().create_future()
            f.set_result(value)
            return f

        async def await_it(awaitable):
            return await awaitable

        async def call_net(f, *args):
            return await f(*args)

        async def set_var_and_call(value, f, *args):
            var.set(value)
            return await f(*args)

        cancelled_seen = []

        async def cancellable(seconds):
            try:
                await asyncio.sleep(seconds)
                return 'finished'
            except asyncio.CancelledError:
                cancelled_seen.append(seconds)
                raise
        """;

    private static readonly Lazy<PyObject> s_globals = new(() => Py.Run(Source, fileName: "bridge_tests.py"));

    internal static PyObject Get(string name) => s_globals.Value[name];
}
