using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>Attacks on exception translation in both directions: Python exceptions whose fields
/// raise (the same exception, again), cyclic or endless chains, and .NET exceptions whose
/// Message/StackTrace/ToString getters throw.</summary>
internal static class ExceptionAttacks
{
    private const string Hostile = """
        class Boom(Exception):
            pass

        class Unprintable:
            def __str__(self):
                raise Boom('str of a field')
            __repr__ = __str__

        # The type's __module__ is an object whose str() raises that same exception type.
        Boom.__module__ = Unprintable()

        class Meta(type):
            def __getattribute__(cls, name):
                if name == '__qualname__':
                    return Unprintable()
                return type.__getattribute__(cls, name)

        class QualBoom(Exception, metaclass=Meta):
            pass

        class StrBoom(Exception):
            def __str__(self):
                raise StrBoom('again')

        class MetaRaises(type):
            def __getattribute__(cls, name):
                if name in ('__module__', '__qualname__', '__name__'):
                    raise ModRaises()
                return type.__getattribute__(cls, name)

        class ModRaises(Exception, metaclass=MetaRaises):
            pass

        def raise_boom():
            raise Boom('the original')

        def raise_qual():
            raise QualBoom('qual')

        def raise_str():
            raise StrBoom('str')

        def raise_mod():
            raise ModRaises('mod')

        def raise_cyclic():
            a = ValueError('a')
            b = KeyError('b')
            a.__cause__ = b
            b.__cause__ = a
            raise a

        def raise_long(n):
            e = ValueError('0')
            for i in range(1, n):
                nxt = ValueError(str(i))
                nxt.__context__ = e
                e = nxt
            raise e

        def raise_context_cycle():
            a = ValueError('a')
            b = ValueError('b')
            a.__context__ = b
            b.__context__ = a
            raise b
        """;

    [Attack("exception.fields_raise")]
    private static void FieldsRaise()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Hostile);
        foreach (var name in new[] { "raise_boom", "raise_qual", "raise_str", "raise_mod" })
        {
            using var f = g[name];
            try
            {
                f.Call().Dispose();
                Outcome.Report(name, "no exception");
            }
            catch (PythonException e)
            {
                Outcome.Report(name, $"{e.PythonTypeModule}|{e.PythonTypeName}|{e.PythonMessage}|{e.PythonTraceback?.Contains(name)}");
            }
        }
    }

    [Attack("exception.chains")]
    private static void Chains()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Hostile);
        foreach (var (name, args) in new (string, object?[])[] { ("raise_cyclic", []), ("raise_context_cycle", []), ("raise_long", [100_000]) })
        {
            using var f = g[name];
            try
            {
                f.Call(args).Dispose();
                Outcome.Report(name, "no exception");
            }
            catch (PythonException e)
            {
                int depth = 0;
                for (var inner = e.InnerException; inner != null; inner = inner.InnerException) depth++;
                Outcome.Report(name, $"{e.PythonTypeName}:{e.PythonMessage}:depth={depth}");
            }
        }
    }

    [Attack("exception.traceback_module_broken")]
    private static void TracebackModuleBroken()
    {
        // The first exception with a traceback imports 'traceback'; make that import fail.
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run("import sys\nsys.modules['traceback'] = None\ndef f():\n    raise KeyError('the original')\n");
        using var f = g["f"];
        Outcome.Try("call", () => f.Call().Dispose());
    }

    /// <summary>Every getter Python's translation might read throws.</summary>
    private sealed class PoisonedException() : InvalidOperationException("never read")
    {
        public override string Message => throw new InvalidOperationException("Message getter");
        public override string? StackTrace => throw new InvalidOperationException("StackTrace getter");
        public override string ToString() => throw new InvalidOperationException("ToString");
        public override string? Source { get => throw new InvalidOperationException("Source"); set { } }
    }

    private static Exception Thrown(Exception e)
    {
        try { throw e; }
        catch (Exception caught) { return caught; }
    }

    private const string Catcher = """
        import asyncio
        def call(f):
            try:
                f(None)
                return 'no exception'
            except Exception as e:
                return type(e).__name__ + '|' + str(getattr(e, 'dotnet_type', None))

        async def await_it(f):
            try:
                await asyncio.wait_for(f(None), 5)
                return 'no exception'
            except asyncio.TimeoutError:
                return 'never completed'
            except Exception as e:
                return type(e).__name__ + '|' + str(getattr(e, 'dotnet_type', None))

        def passthrough(f):
            f(None)
        """;

    [Attack("exception.dotnet_getters_throw_sync")]
    private static void DotNetGettersThrowSync()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Catcher);
        var poisoned = Thrown(new PoisonedException());
        using var f = PyFunction.Create<object?, object?>("poisoned", _ => throw poisoned);
        using var call = g["call"];
        Outcome.Report("python_sees", call.Call<PyObject, string>(f));
        // Through Python and back: the same object.
        using var passthrough = g["passthrough"];
        try
        {
            passthrough.Call(f).Dispose();
            Outcome.Report("back", "no exception");
        }
        catch (Exception e)
        {
            Outcome.Report("back", ReferenceEquals(e, poisoned) ? "same" : e.GetType().Name);
        }
        // A new exception each time: one kept alive by a leaked handle shows on the managed heap.
        using var fresh = PyFunction.Create<object?, object?>("fresh", _ => throw new PoisonedException());
        Outcome.MeasureLeak("raise", () => call.Call<PyObject, string>(fresh), warmup: 20000, count: 100000);
    }

    [Attack("exception.dotnet_getters_throw_async")]
    private static async Task DotNetGettersThrowAsync()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        await using var loop = new EventLoopThread();
        using var g = Py.Run(Catcher);
        using var awaitIt = g["await_it"];
        using var later = PyFunction.CreateAsync<object?, object?>("later", async (object? _, CancellationToken ct) =>
        {
            await Task.Yield();
            throw new PoisonedException();
        });
        using var now = PyFunction.CreateAsync<object?, object?>("now", (object? _, CancellationToken ct) => Task.FromException<object?>(new PoisonedException()));
        Outcome.Report("later", Outcome.Within(loop.CallAsync<PyObject, string>(awaitIt, later), 10_000, "awaiting a throwing async function"));
        Outcome.Report("now", Outcome.Within(loop.CallAsync<PyObject, string>(awaitIt, now), 10_000, "awaiting a faulted task"));
    }

    private const string CancelProbe = """
        import asyncio
        def call_sync(f):
            try:
                f(None)
                return 'no exception'
            except asyncio.CancelledError as e:
                return 'CancelledError'
            except Exception as e:
                return 'Exception:' + type(e).__name__

        async def call_async(f):
            try:
                await f(None)
                return 'no exception'
            except asyncio.CancelledError:
                return 'CancelledError'
            except Exception as e:
                return 'Exception:' + type(e).__name__

        async def cancel_it(f):
            fut = asyncio.ensure_future(f(None))
            await asyncio.sleep(0.05)
            fut.cancel()
            try:
                await fut
                return 'no exception'
            except asyncio.CancelledError:
                return 'CancelledError'
            except Exception as e:
                return 'Exception:' + type(e).__name__

        async def inner_cancelled():
            t = asyncio.ensure_future(asyncio.sleep(10))
            await asyncio.sleep(0)
            t.cancel()
            return await t

        async def await_cancelled_python(f):
            try:
                await f(None)
                return 'no exception'
            except asyncio.CancelledError as e:
                return 'CancelledError'
            except Exception as e:
                return 'Exception:' + type(e).__name__
        """;

    [Attack("exception.operation_canceled")]
    private static async Task OperationCanceled()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        await using var loop = new EventLoopThread();
        using var g = Py.Run(CancelProbe);
        using var callSync = g["call_sync"];
        using var callAsync = g["call_async"];
        using var cancelIt = g["cancel_it"];
        using var innerCancelled = g["inner_cancelled"];
        using var awaitCancelledPython = g["await_cancelled_python"];

        using var syncOce = PyFunction.Create<object?, object?>("sync_oce", _ => throw new OperationCanceledException("nobody asked"));
        Outcome.Report("sync", Outcome.Within(loop.CallAsync<PyObject, string>(callSync, syncOce), 10_000, "sync"));

        // An HttpClient-style timeout: the function's own CancellationTokenSource fires.
        using var timeout = PyFunction.CreateAsync<object?, object?>("timeout", async (object? _, CancellationToken ct) =>
        {
            using var own = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
            await Task.Delay(10_000, own.Token);
            return null;
        });
        Outcome.Report("own_timeout", Outcome.Within(loop.CallAsync<PyObject, string>(callAsync, timeout), 10_000, "own timeout"));

        using var alreadyCanceled = PyFunction.CreateAsync<object?, object?>("already", (object? _, CancellationToken ct) =>
            Task.FromCanceled<object?>(new CancellationToken(canceled: true)));
        Outcome.Report("already_canceled", Outcome.Within(loop.CallAsync<PyObject, string>(callAsync, alreadyCanceled), 10_000, "already canceled"));

        // Python cancels: CancelledError in Python, and the .NET token is cancelled.
        var tokenCancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var slow = PyFunction.CreateAsync<object?, object?>("slow", async (object? _, CancellationToken ct) =>
        {
            using var reg = ct.Register(() => tokenCancelled.TrySetResult(true));
            await Task.Delay(10_000, ct);
            return null;
        });
        Outcome.Report("python_cancels", Outcome.Within(loop.CallAsync<PyObject, string>(cancelIt, slow), 10_000, "python cancels"));
        Outcome.Report("token_cancelled", Outcome.Within(tokenCancelled.Task, 10_000, "token"));

        // .NET awaited a Python awaitable that was cancelled: the original CancelledError goes on.
        using var awaitsPython = PyFunction.CreateAsync<object?, object?>("awaits_python", async (object? _, CancellationToken ct) =>
        {
            using var coroutine = innerCancelled.Call();
            using var r = await PyAwaitable.ToTask(coroutine, ct);
            return null;
        });
        Outcome.Report("python_cancelled_inside", Outcome.Within(loop.CallAsync<PyObject, string>(awaitCancelledPython, awaitsPython), 10_000, "inner"));
    }
}
