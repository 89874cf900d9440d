using AsyncioRaw;

namespace AsyncioRaw.Tests;

/// <summary>
/// Typed calls with up to five arguments and keyword arguments, both ways: .NET calling Python
/// (PyObject.Call, CallMethod, EventLoopThread.CallAsync) and Python calling .NET (PyFunction's
/// typed functions with named parameters), plus the converted reads (GetAttr, GetItem).
/// </summary>
[TestFixture]
public class CallTests
{
    private PyObject _code = null!;

    [OneTimeSetUp]
    public void Load() => _code = Py.Run("""
        import asyncio

        def digits(a=0, b=0, c=0, d=0, e=0, f=0, g=0):
            return a * 1000000 + b * 100000 + c * 10000 + d * 1000 + e * 100 + f * 10 + g

        def describe(*args, **kwargs):
            return repr(args) + ' ' + repr(sorted(kwargs.items()))

        async def add_later(a, b, c=0):
            await asyncio.sleep(0)
            return a + b + c

        class Counter:
            def __init__(self):
                self.total = 0
            def add(self, a, b=0, *, times=1):
                self.total += (a + b) * times
                return self.total

        x = 42
        name = 'forty-two'

        def add3(a, b, c):
            return a + b * 10 + c * 100

        def error_of(f, *args, **kwargs):
            try:
                f(*args, **kwargs)
            except Exception as e:
                return f'{type(e).__name__}: {e}'
            return 'no error'

        def result_of(f, *args, **kwargs):
            return f(*args, **kwargs)

        async def await_with(f, *args, **kwargs):
            return await f(*args, **kwargs)
        """, fileName: "calls.py");

    [OneTimeTearDown]
    public void Unload() => _code?.Dispose();

    private PyObject Get(string name) => _code.GetItem<PyObject>(name);

    private static long RefCount(PyObject o)
    {
        using var sys = Py.Import("sys");
        return sys.CallMethod<PyObject, long>("getrefcount", o);
    }

    // ---- .NET calls Python ----

    [Test]
    public void Typed_calls_take_up_to_five_arguments_of_their_own_types()
    {
        using var digits = Get("digits");
        Assert.That(digits.Call<long>(), Is.EqualTo(0));
        Assert.That(digits.Call<long, long>(1), Is.EqualTo(1000000));
        Assert.That(digits.Call<int, long, long>(1, 2), Is.EqualTo(1200000));
        Assert.That(digits.Call<long, int, long, long>(1, 2, 3), Is.EqualTo(1230000));
        Assert.That(digits.Call<long, long, long, long, long>(1, 2, 3, 4), Is.EqualTo(1234000));
        Assert.That(digits.Call<long, long, long, long, long, long>(1, 2, 3, 4, 5), Is.EqualTo(1234500));
        using var describe = Get("describe");
        string text = describe.Call<string, double, bool, PyObject?, byte[], string>("s", 1.5, true, null, [1, 2]);
        Assert.That(text, Is.EqualTo("('s', 1.5, True, None, b'\\x01\\x02') []"));
    }

    [Test]
    public void Keyword_arguments_follow_the_positional_ones()
    {
        using var digits = Get("digits");
        Assert.That(digits.Call<long>(("g", 7), ("a", 1)), Is.EqualTo(1000007));
        Assert.That(digits.Call<long, long>(1, ("c", 3), ("b", 2)), Is.EqualTo(1230000));
        Assert.That(digits.Call<long, long, long, long, long, long>(1, 2, 3, 4, 5, ("g", 7), ("f", 6)), Is.EqualTo(1234567));
        using var describe = Get("describe");
        Assert.That(describe.Call<long, string>(1, ("text", "é\0x"), ("none", null), ("list", new[] { 1, 2 })),
            Is.EqualTo("(1,) [('list', [1, 2]), ('none', None), ('text', 'é\\x00x')]"));
        // More than the stack buffer holds: the arguments go to native memory.
        var many = Enumerable.Range(0, 30).Select(i => ($"k{i:D2}", (object?)i)).ToArray();
        string all = describe.Call<long, long, string>(1, 2, many);
        Assert.That(all, Does.StartWith("(1, 2) [('k00', 0), ('k01', 1)").And.EndWith("('k29', 29)]"));
    }

    [Test]
    public void Keyword_errors_are_clear_and_release_what_was_converted()
    {
        using var describe = Get("describe");
        using var marker = Py.Eval("object()");
        long before = RefCount(marker);
        var twice = Assert.Throws<ArgumentException>(() => describe.Call<PyObject, string>(marker, ("a", marker), ("a", 2)))!;
        Assert.That(twice.Message, Does.Contain("'a' is given more than once"));
        var longList = Enumerable.Range(0, 20).Select(i => ($"k{i % 19}", (object?)marker)).ToArray();
        Assert.Throws<ArgumentException>(() => describe.Call<PyObject, string>(marker, longList));
        Assert.Throws<ArgumentNullException>(() => describe.Call<PyObject, string>(marker, (null!, 1)));
        // A value with no conversion, after others were converted.
        Assert.Throws<ArgumentException>(() => describe.Call<PyObject, PyObject, string>(marker, marker, ("x", marker), ("y", new object())));
        Assert.Throws<ArgumentException>(() => describe.Call<PyObject, object, string>(marker, new object()));
        // Python refuses the call: its error comes back, the arguments are released.
        using var digits = Get("digits");
        var unknown = Assert.Throws<PythonException>(() => digits.Call<PyObject, long>(marker, ("z", marker)))!;
        Assert.That(unknown.PythonTypeName, Is.EqualTo("TypeError"));
        Assert.That(unknown.PythonMessage, Does.Contain("unexpected keyword argument 'z'"));
        Assert.That(RefCount(marker), Is.EqualTo(before));
    }

    [Test]
    public void Methods_are_called_by_name_with_converted_results()
    {
        using var math = Py.Import("math");
        Assert.That(math.CallMethod<double, double>("sqrt", 2.0), Is.EqualTo(Math.Sqrt(2)));
        Assert.That(math.CallMethod<long, long, long>("gcd", 12, 18), Is.EqualTo(6));
        using var json = Py.Import("json");
        var data = new Dictionary<string, object?> { ["b"] = 1, ["a"] = new[] { 1, 2 } };
        Assert.That(json.CallMethod<object, string>("dumps", data, ("sort_keys", true), ("separators", (",", ":"))),
            Is.EqualTo("{\"a\":[1,2],\"b\":1}"));
        using var counterType = Get("Counter");
        using var counter = counterType.Call();
        Assert.That(counter.CallMethod<long, long>("add", 1), Is.EqualTo(1));
        Assert.That(counter.CallMethod<long, long, long>("add", 1, 2, ("times", 2)), Is.EqualTo(7));
        Assert.That(counter.CallMethod<long>("add", ("a", 3), ("times", 1)), Is.EqualTo(10));
        Assert.That(counter.GetAttr<long>("total"), Is.EqualTo(10));
        using var marker = Py.Eval("object()");
        long before = RefCount(marker);
        var missing = Assert.Throws<PythonException>(() => counter.CallMethod<PyObject, long>("no_such_method", marker))!;
        Assert.That(missing.PythonTypeName, Is.EqualTo("AttributeError"));
        Assert.Throws<ArgumentNullException>(() => counter.CallMethod<PyObject, long>(null!, marker));
        Assert.That(RefCount(marker), Is.EqualTo(before));
        // A name with an embedded NUL is refused, as by GetAttr.
        Assert.That(Assert.Throws<ArgumentException>(() => counter.CallMethod<long>("add\0x", ("a", 1)))!.ParamName, Is.EqualTo("name"));
    }

    [Test]
    public void Globals_and_attributes_are_read_converted()
    {
        Assert.That(_code.GetItem<long>("x"), Is.EqualTo(42));
        Assert.That(_code.GetItem<string>("name"), Is.EqualTo("forty-two"));
        using var math = Py.Import("math");
        Assert.That(math.GetAttr<double>("pi"), Is.EqualTo(Math.PI));
        using var pi = math.GetAttr<PyObject>("pi");
        Assert.That(pi.As<double>(), Is.EqualTo(Math.PI));
        Assert.That(Assert.Throws<PythonException>(() => _code.GetItem<long>("no_such_global"))!.PythonTypeName, Is.EqualTo("KeyError"));
        Assert.That(Assert.Throws<PythonException>(() => math.GetAttr<double>("no_such_attr"))!.PythonTypeName, Is.EqualTo("AttributeError"));
        Assert.Throws<InvalidCastException>(() => _code.GetItem<long>("name"));
        // The value that failed to convert was released: its refcount is back where it was.
        using var name = _code.GetItem<PyObject>("name");
        long before = RefCount(name);
        for (int i = 0; i < 10; i++) Assert.Throws<InvalidCastException>(() => _code.GetItem<long>("name"));
        Assert.That(RefCount(name), Is.EqualTo(before));
    }

    [Test]
    public async Task Hosted_loop_calls_take_typed_and_keyword_arguments()
    {
        await using var host = new EventLoopThread();
        using var addLater = Get("add_later");
        using var digits = Get("digits");
        Assert.That(await host.CallAsync<long, long, long>(addLater, 1, 2), Is.EqualTo(3));
        Assert.That(await host.CallAsync<long, long, long>(addLater, 1, 2, kwargs: [("c", 3)]), Is.EqualTo(6));
        Assert.That(await host.CallAsync<long, long, long, long>(addLater, 1, 2, 4), Is.EqualTo(7));
        Assert.That(await host.CallAsync<long>(addLater, kwargs: [("a", 1), ("b", 1)]), Is.EqualTo(2));
        Assert.That(await host.CallAsync<long, long, long, long, long>(digits, 1, 2, 3, 4), Is.EqualTo(1234000));
        Assert.That(await host.CallAsync<long, long, long, long, long, long>(digits, 1, 2, 3, 4, 5, kwargs: [("g", 7)]), Is.EqualTo(1234507));
        // The keyword array is the caller's again as soon as CallAsync returns.
        (string, object?)[] kwargs = [("c", 100)];
        var pending = host.CallAsync<long, long, long>(addLater, 1, 2, kwargs: kwargs);
        kwargs[0] = ("c", -100);
        Assert.That(await pending, Is.EqualTo(103));
        var twice = host.CallAsync<long, long, long>(addLater, 1, 2, kwargs: [("c", 1), ("c", 2)]);
        Assert.ThrowsAsync<ArgumentException>(async () => await twice);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.CatchAsync<OperationCanceledException>(async () => await host.CallAsync<long, long, long>(addLater, 1, 2, cts.Token));
    }

    // ---- Python calls .NET ----

    [Test]
    public void Typed_NET_functions_take_up_to_five_arguments()
    {
        using var resultOf = Get("result_of");
        using var f2 = PyFunction.Create<long, string, string>("f2", (a, b) => $"{a}{b}");
        using var f3 = PyFunction.Create<long, long, long, long>("f3", (a, b, c) => a + b * 10 + c * 100);
        using var f4 = PyFunction.Create<double, bool, string, PyObject, string>("f4", (a, b, c, d) => $"{a} {b} {c} {d.TypeName}");
        using var f5 = PyFunction.Create<long, long, long, long, long, long>("f5", (a, b, c, d, e) => a + b + c + d + e);
        Assert.That(resultOf.Call<PyObject, long, string, string>(f2, 1, "x"), Is.EqualTo("1x"));
        Assert.That(resultOf.Call<PyObject, long, long, long, long>(f3, 1, 2, 3), Is.EqualTo(321));
        Assert.That(resultOf.Call<PyObject, double, bool, string, PyObject?, string>(f4, 0.5, true, "s", null), Is.EqualTo("0.5 True s NoneType"));
        Assert.That(f5.Call<long, long, long, long, long, long>(1, 2, 3, 4, 5), Is.EqualTo(15));
        using var errorOf = Get("error_of");
        Assert.That(errorOf.Call<PyObject, long, long, long, long, string>(f5, 1, 2, 3, 4, ("e", 5)), Is.EqualTo("TypeError: f5() takes no keyword arguments"));
    }

    [Test]
    public void Named_parameters_bind_keyword_arguments_as_a_def_does()
    {
        using var resultOf = Get("result_of");
        using var add3 = PyFunction.Create<long, long, long, long>("add3", (a, b, c) => a + b * 10 + c * 100, parameters: ["a", "b", "c"]);
        Assert.That(resultOf.Call<PyObject, long, long, long, long>(add3, 1, 2, 3), Is.EqualTo(321));
        Assert.That(resultOf.Call<PyObject, long, long>(add3, 1, ("c", 3), ("b", 2)), Is.EqualTo(321));
        Assert.That(resultOf.Call<PyObject, long>(add3, ("c", 3), ("a", 1), ("b", 2)), Is.EqualTo(321));
        // A keyword name that is not the interned str Python code would use is matched by its text.
        using var eval = Py.Run("def call(f):\n    return f(1, **{''.join(['b']): 2, 'c': 3})\n");
        using var call = eval.GetItem<PyObject>("call");
        Assert.That(call.Call<PyObject, long>(add3), Is.EqualTo(321));
    }

    [Test]
    public void Bad_calls_of_a_NET_function_raise_the_TypeError_Python_raises_for_a_def()
    {
        using var errorOf = Get("error_of");
        using var python = Get("add3");
        using var dotnet = PyFunction.Create<long, long, long, long>("add3", (a, b, c) => a + b * 10 + c * 100, parameters: ["a", "b", "c"]);
        var calls = new (string What, object?[] Args, (string, object?)[] Kwargs)[]
        {
            ("too many", [1, 2, 3, 4], []),
            ("one missing", [1, 2], []),
            ("two missing", [1], []),
            ("all missing", [], []),
            ("keywords only, some missing", [], [("c", 3)]),
            ("unexpected keyword", [1, 2, 3], [("d", 4)]),
            ("unexpected keyword, missing too", [1], [("d", 4)]),
            ("given twice", [1, 2], [("a", 3)]),
            ("given twice, full positional", [1, 2, 3], [("b", 3)]),
        };
        foreach (var (what, args, kwargs) in calls)
        {
            string expected = Error(python), actual = Error(dotnet);
            TestContext.Progress.WriteLine($"{what}: {actual}");
            Assert.That(actual, Is.EqualTo(expected), what);
            Assert.That(actual, Does.StartWith("TypeError: add3() "), what);

            string Error(PyObject f)
            {
                object?[] all = [f, .. args];
                using var e = errorOf.Call(all, kwargs.Select(kv => new KeyValuePair<string, object?>(kv.Item1, kv.Item2)));
                return e.As<string>();
            }
        }
    }

    [Test]
    public void Positional_only_NET_functions_refuse_keywords_like_a_builtin()
    {
        using var errorOf = Get("error_of");
        using var f = PyFunction.Create<long, long, long>("pair", (a, b) => a + b);
        Assert.That(errorOf.Call<PyObject, long, long, string>(f, 1, 2, ("b", 2)), Is.EqualTo("TypeError: pair() takes no keyword arguments"));
        Assert.That(errorOf.Call<PyObject, long, string>(f, 1), Is.EqualTo("TypeError: pair() takes 2 positional arguments but 1 was given"));
        Assert.That(errorOf.Call<PyObject, long, long, long, string>(f, 1, 2, 3), Is.EqualTo("TypeError: pair() takes 2 positional arguments but 3 were given"));
        // A conversion failure names the argument, by name when there is one.
        Assert.That(errorOf.Call<PyObject, long, string, string>(f, 1, "x"), Does.StartWith("DotNetTypeError: System.InvalidCastException: pair() argument 2: Cannot convert a Python str"));
        using var named = PyFunction.Create<long, long, long>("pair", (a, b) => a + b, parameters: ["a", "b"]);
        Assert.That(errorOf.Call<PyObject, long, string>(named, 1, ("b", "x")), Does.StartWith("DotNetTypeError: System.InvalidCastException: pair() argument 'b': Cannot convert"));
    }

    [Test]
    public void Parameter_names_are_checked_when_the_function_is_made()
    {
        Assert.Throws<ArgumentException>(() => PyFunction.Create<long, long, long>("f", (a, b) => a + b, parameters: ["a"]));
        Assert.Throws<ArgumentException>(() => PyFunction.Create<long, long, long>("f", (a, b) => a + b, parameters: ["a", "a"]));
        Assert.Throws<ArgumentException>(() => PyFunction.Create<long, long, long>("f", (a, b) => a + b, parameters: ["a", ""]));
        Assert.Throws<ArgumentNullException>(() => PyFunction.Create<long, long, long>("f", null!));
        Assert.Throws<ArgumentException>(() => PyFunction.CreateAsync<long, long, long>("f", (a, b, _) => Task.FromResult(a + b), parameters: ["a", "b", "c"]));
    }

    [Test]
    public void Typed_async_NET_functions_take_up_to_five_arguments_and_keywords()
    {
        using var awaitWith = Get("await_with");
        using var f2 = PyFunction.CreateAsync<long, long, long>("f2", async (a, b, ct) => { await Task.Delay(1, ct); return a + b * 10; }, parameters: ["a", "b"]);
        using var f3 = PyFunction.CreateAsync<long, long, long, long>("f3", (a, b, c) => Task.FromResult(a + b * 10 + c * 100));
        var seen = new List<long>();
        using var f4 = PyFunction.CreateAsync<long, long, long, long>("f4", async (a, b, c, d, ct) => { await Task.Yield(); seen.Add(a + b + c + d); }, parameters: ["a", "b", "c", "d"]);
        using var f5 = PyFunction.CreateAsync<long, long, long, long, long, long>("f5", async (a, b, c, d, e, ct) => { await Task.Delay(1, ct); return a + b + c + d + e; });
        using var f5NoToken = PyFunction.CreateAsync<long, long, long, long, long, long>("f5", (a, b, c, d, e) => Task.FromResult(a * b * c * d * e));
        var r = Asyncio.Run(async _ =>
        {
            long a = await PyAwaitable.ToTask<long>(awaitWith.Call<PyObject, long, PyObject>(f2, 1, ("b", 2)));
            long b = await PyAwaitable.ToTask<long>(awaitWith.Call<PyObject, long, long, long, PyObject>(f3, 1, 2, 3));
            using (await PyAwaitable.ToTask(awaitWith.Call<PyObject, long, PyObject>(f4, 1, ("d", 4), ("c", 3), ("b", 2)))) { }
            long d = await PyAwaitable.ToTask<long>(f5.Call<long, long, long, long, long, PyObject>(1, 2, 3, 4, 5));
            long e = await PyAwaitable.ToTask<long>(f5NoToken.Call<long, long, long, long, long, PyObject>(1, 2, 3, 4, 5));
            return (a, b, d, e);
        });
        Assert.That(r, Is.EqualTo((21L, 321L, 15L, 120L)));
        Assert.That(seen, Is.EqualTo(new[] { 10L }));
    }

    [Test]
    public void Bad_calls_of_an_async_NET_function_raise_TypeError_before_any_work_starts()
    {
        using var errorOf = Get("error_of");
        int started = 0;
        using var f = PyFunction.CreateAsync<long, long, long>("work", (a, b, ct) => { started++; return Task.FromResult(a + b); }, parameters: ["a", "b"]);
        Assert.That(errorOf.Call<PyObject, long, string>(f, 1, ("c", 2)), Is.EqualTo("TypeError: work() got an unexpected keyword argument 'c'"));
        Assert.That(errorOf.Call<PyObject, string>(f, ("b", 2)), Is.EqualTo("TypeError: work() missing 1 required positional argument: 'a'"));
        Assert.That(started, Is.Zero);
    }
}
