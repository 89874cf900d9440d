using AsyncioRaw;
using AsyncioRaw.Interop;

namespace AsyncioRaw.Tests;

/// <summary>
/// On a debug build of CPython (Py_DEBUG: <c>sys.gettotalrefcount()</c> exists) every kind of round
/// trip the suite makes, repeated many times after a warm-up, leaves the interpreter's total
/// reference count where it was: a leaked reference shows as growth per operation, an
/// over-release as a fall (or as the debug build's own assertion). Each round trip is measured on
/// its own, so a failure names it. Not parallel: other tests' Python work would move the total.
/// </summary>
[TestFixture, NonParallelizable]
public class RefcountTests
{
    private const int Warmup = 1_000;
    private const int Count = 10_000;
    // A leak is at least one reference per operation. Some round trips (the exception ones) move
    // the total once by a few dozen references whatever the count (a cache filled late), so two
    // windows are measured and the smaller change is taken: a leak grows in both.
    private const double MaxPerOp = 0.01;

    private EventLoopThread _host = null!;
    private PyObject _code = null!;

    [OneTimeSetUp]
    public void Start()
    {
        using (Gil.Acquire())
        {
            using var sys = Py.Import("sys");
            if (!sys.HasAttr("gettotalrefcount"))
                Assert.Ignore($"Python {PythonLibrary.Version} from {PythonLibrary.LoadedPath} is not a debug build (Py_DEBUG): " +
                              "sys.gettotalrefcount does not exist, so reference counts cannot be totalled");
        }
        _host = new EventLoopThread("refcount loop");
        _code = Py.Run("""
            import asyncio

            def echo(a, b, c):
                return (a, b, c)

            def raise_value_error(text):
                raise ValueError(text)

            def call_and_catch(f, x):
                try:
                    f(x)
                except Exception as e:
                    return type(e).__name__
                return 'nothing raised'

            def call_through(f, x):
                return f(x)

            async def add_one(x):
                await asyncio.sleep(0)
                return x + 1

            async def fail_async(x):
                await asyncio.sleep(0)
                raise KeyError(x)

            async def await_dotnet(f, x):
                return await f(x)

            async def await_dotnet_and_catch(f, x):
                try:
                    await f(x)
                except Exception as e:
                    return type(e).__name__
                return 'nothing raised'
            """);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_host != null) await _host.DisposeAsync();
        _code?.Dispose();
    }

    // Everything released that can be: .NET finalizers (a PythonException's object, a forgotten
    // PyObject), the deferred decrefs they queue, and Python's cyclic garbage.
    private static long TotalRefcount()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var gil = Gil.Acquire();
        DeferredRelease.Drain();
        using var gc = Py.Import("gc");
        using (gc.CallMethod("collect")) { }
        using var sys = Py.Import("sys");
        using var total = sys.CallMethod("gettotalrefcount");
        return total.As<long>();
    }

    private static double PerOp(Action op)
    {
        for (int i = 0; i < Warmup; i++) op();
        var totals = new long[3];
        for (int w = 0; w < totals.Length; w++)
        {
            if (w > 0) for (int i = 0; i < Count; i++) op();
            totals[w] = TotalRefcount();
        }
        return Smaller(totals);
    }

    private static async Task<double> PerOpAsync(Func<int, Task> op)
    {
        for (int i = 0; i < Warmup; i++) await op(i);
        var totals = new long[3];
        for (int w = 0; w < totals.Length; w++)
        {
            if (w > 0) for (int i = 0; i < Count; i++) await op(i);
            totals[w] = TotalRefcount();
        }
        return Smaller(totals);
    }

    private static double Smaller(long[] totals)
    {
        long first = totals[1] - totals[0], second = totals[2] - totals[1];
        return (Math.Abs(first) < Math.Abs(second) ? first : second) / (double)Count;
    }

    private static void AssertBalanced(double perOp, string roundTrip)
    {
        TestContext.Progress.WriteLine($"refcount {roundTrip}: {perOp:+0.0000;-0.0000} per op");
        Assert.That(Math.Abs(perOp), Is.LessThan(MaxPerOp),
            $"{roundTrip}: sys.gettotalrefcount() moved by {perOp:F4} per operation over {Count:N0} operations " +
            $"({(perOp > 0 ? "leaked" : "over-released")} references)");
    }

    [Test]
    public void Calls_with_arguments_and_results()
    {
        using var echo = _code["echo"];
        AssertBalanced(PerOp(() =>
        {
            using var r = echo.Call(1L, "two", 3.5);
            using var first = r[0L];
            Assert.That(first.As<long>(), Is.EqualTo(1));
        }), "PyObject.Call with converted arguments, result indexed");
    }

    [Test]
    public void Typed_calls()
    {
        using var hypot = Py.Eval("lambda a, b: (a * a + b * b) ** 0.5");
        AssertBalanced(PerOp(() => Assert.That(hypot.Call<double, double, double>(3, 4), Is.EqualTo(5))), "Call<double, double, double>");
    }

    [Test]
    public void Keyword_calls_both_ways()
    {
        using var echo = _code["echo"];
        AssertBalanced(PerOp(() =>
        {
            using var r = echo.Call<long, string, PyObject>(1, "two", ("c", 3.5));
            Assert.That(r.Length, Is.EqualTo(3));
        }),
            "Call<T1, T2, PyObject> with a keyword (vectorcall kwnames)");
        AssertBalanced(PerOp(() => Assert.Throws<ArgumentException>(() => echo.Call<long, long>(1, ("b", "x"), ("b", "y")))),
            "a keyword given twice, refused after conversion");
        using var callThrough = Py.Run("def call(f, x):\n    return f(x, b=2)\n");
        using var call = callThrough["call"];
        using var add = PyFunction.Create<long, long, long>("add", (a, b) => a + b, parameters: ["a", "b"]);
        AssertBalanced(PerOp(() => Assert.That(call.Call<PyObject, long, long>(add, 1), Is.EqualTo(3))), ".NET function bound by keyword");
        using var callAndCatch = _code["call_and_catch"];
        AssertBalanced(PerOp(() => Assert.That(callAndCatch.Call<PyObject, long, string>(add, 1), Is.EqualTo("TypeError"))),
            "a .NET function called with a missing argument (TypeError)");
    }

    [Test]
    public void Conversions_both_ways()
    {
        var value = new List<object?> { 1L, "text", 2.5, true, null, new byte[] { 1, 2 }, new Dictionary<string, object?> { ["k"] = new List<object?> { 3L } } };
        AssertBalanced(PerOp(() =>
        {
            using var py = PyConvert.ToPython(value);
            var back = py.ToClr();
            Assert.That(back, Is.InstanceOf<List<object?>>());
        }), "PyConvert.ToPython of nested .NET data and ToClr back");
        AssertBalanced(PerOp(() =>
        {
            using var s = PyConvert.ToPython("a string");
            using var n = PyConvert.ToPython(1L << 40);
            Assert.That(s.As<string>().Length + n.As<long>(), Is.EqualTo(8 + (1L << 40)));
        }), "scalars to Python and As<T> back");
    }

    [Test]
    public void Python_exception_into_dotnet()
    {
        using var raise = _code["raise_value_error"];
        AssertBalanced(PerOp(() =>
        {
            try
            {
                raise.Call("boom").Dispose();
                Assert.Fail("no exception");
            }
            catch (PythonException e)
            {
                Assert.That(e.Message, Does.Contain("boom"));
            }
        }), "a Python ValueError caught in .NET as PythonException (type, message, traceback read)");
    }

    [Test]
    public void Dotnet_exception_into_Python()
    {
        using var callAndCatch = _code["call_and_catch"];
        using var boom = PyFunction.Create<long, long>("boom", x => throw new InvalidOperationException("boom " + x));
        AssertBalanced(PerOp(() =>
        {
            using var r = callAndCatch.Call(boom, 1L);
            Assert.That(r.As<string>(), Is.EqualTo("DotNetError"));
        }), "a .NET exception raised into Python by a PyFunction and caught there");
    }

    [Test]
    public void Dotnet_exception_through_Python_and_back()
    {
        using var callThrough = _code["call_through"];
        using var boom = PyFunction.Create<long, long>("boom", x => throw new ArgumentOutOfRangeException(nameof(x), "boom"));
        AssertBalanced(PerOp(() =>
        {
            try
            {
                callThrough.Call(boom, 1L).Dispose();
                Assert.Fail("no exception");
            }
            catch (ArgumentOutOfRangeException)
            {
            }
        }), "a .NET exception through a Python frame and back into .NET");
    }

    [Test]
    public async Task Dotnet_awaits_Python_on_a_loop_thread()
    {
        using var addOne = _code["add_one"];
        AssertBalanced(await PerOpAsync(async i => Assert.That(await _host.CallAsync<long, long>(addOne, i), Is.EqualTo(i + 1))),
            "EventLoopThread.CallAsync of a coroutine function (ToTask of its coroutine)");
    }

    [Test]
    public async Task Dotnet_awaits_a_failing_Python_coroutine()
    {
        using var fail = _code["fail_async"];
        AssertBalanced(await PerOpAsync(async i =>
        {
            try
            {
                await _host.CallAsync<long, long>(fail, i);
                Assert.Fail("no exception");
            }
            catch (PythonException e)
            {
                Assert.That(e.Message, Does.Contain(i.ToString()));
            }
        }), "a coroutine raising KeyError, awaited from .NET");
    }

    [Test]
    public async Task Python_awaits_dotnet()
    {
        using var awaitDotnet = _code["await_dotnet"];
        using var later = PyFunction.CreateAsync<long, long>("later", async x => { await Task.Yield(); return x + 1; });
        using var ready = PyFunction.CreateAsync<long, long>("ready", x => Task.FromResult(x + 1));
        AssertBalanced(await PerOpAsync(i => _host.RunAsync(async _ =>
        {
            using var coroutine = awaitDotnet.Call(later, (long)i);
            Assert.That(await PyAwaitable.ToTask<long>(coroutine), Is.EqualTo(i + 1));
            return 0;
        })), "Python awaiting PyFunction.CreateAsync (incomplete Task: an asyncio Future)");
        AssertBalanced(await PerOpAsync(i => _host.RunAsync(async _ =>
        {
            using var coroutine = awaitDotnet.Call(ready, (long)i);
            Assert.That(await PyAwaitable.ToTask<long>(coroutine), Is.EqualTo(i + 1));
            return 0;
        })), "Python awaiting PyFunction.CreateAsync (completed Task: no loop iteration)");
    }

    [Test]
    public async Task Python_awaits_a_failing_dotnet_Task()
    {
        using var awaitAndCatch = _code["await_dotnet_and_catch"];
        using var fails = PyFunction.CreateAsync<long, long>("fails", async x =>
        {
            await Task.Yield();
            throw new InvalidOperationException("fails " + x);
        });
        AssertBalanced(await PerOpAsync(i => _host.RunAsync(async _ =>
        {
            using var coroutine = awaitAndCatch.Call(fails, (long)i);
            using var name = await PyAwaitable.ToTask(coroutine);
            Assert.That(name.As<string>(), Is.EqualTo("DotNetError"));
            return 0;
        })), "Python awaiting a .NET Task that throws, caught in Python");
    }
}
