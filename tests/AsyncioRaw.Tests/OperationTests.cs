namespace AsyncioRaw.Tests;

[TestFixture]
public class OperationTests
{
    [Test]
    public void Import_attributes_and_calls()
    {
        using var math = Py.Import("math");
        Assert.That(math.GetAttr("pi").As<double>(), Is.EqualTo(Math.PI));
        using var sqrt = math.GetAttr("sqrt");
        Assert.That(sqrt.Call<double, double>(16), Is.EqualTo(4.0));
        Assert.That(math.HasAttr("tau"));
        Assert.That(math.HasAttr("no_such_thing"), Is.False);
        Assert.Throws<PythonException>(() => math.GetAttr("no_such_thing"));
    }

    [Test]
    public void Keyword_arguments_and_method_calls()
    {
        using var globals = Py.Run("def f(a, b=0, *, c=0):\n    return a * 100 + b * 10 + c\n");
        using var f = globals["f"];
        using var r = f.Call([1], [new KeyValuePair<string, object?>("c", 3), new("b", 2)]);
        Assert.That(r.As<long>(), Is.EqualTo(123));
        using var s = PyConvert.ToPython("a,b,c");
        using var parts = s.CallMethod("split", ",");
        Assert.That(parts.ToClr(), Is.EqualTo(new List<object?> { "a", "b", "c" }));
    }

    [Test]
    public void Many_positional_arguments()
    {
        using var sum = Py.Eval("lambda *a: sum(a)");
        object?[] args = Enumerable.Range(1, 20).Select(i => (object?)i).ToArray();
        using var r = sum.Call(args);
        Assert.That(r.As<long>(), Is.EqualTo(210));
    }

    [Test]
    public void Items_set_attributes_and_iteration()
    {
        using var d = PyConvert.ToPython(new Dictionary<string, int> { ["x"] = 1 });
        d.SetItem("y", 2);
        Assert.That(d["y"].As<long>(), Is.EqualTo(2));
        Assert.That(d.Length, Is.EqualTo(2));
        using var ns = Py.Eval("type('NS', (), {})()");
        ns.SetAttr("value", "set from .NET");
        Assert.That(ns.GetAttr("value").As<string>(), Is.EqualTo("set from .NET"));
        using var range = Py.Eval("range(5)");
        Assert.That(range.Iterate().Select(o => { using (o) return o.As<long>(); }), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }));
    }

    [Test]
    public void Run_and_eval_with_shared_globals()
    {
        using var globals = Py.Run("x = 20\n");
        Py.Run("y = x + 1\n", globals).Dispose();
        using var r = Py.Eval("x + y", globals);
        Assert.That(r.As<long>(), Is.EqualTo(41));
        var e = Assert.Throws<PythonException>(() => Py.Run("def broken(:\n").Dispose());
        Assert.That(e!.PythonTypeName, Is.EqualTo("SyntaxError"));
    }

    [Test]
    public void Modules_made_from_source_can_be_imported_by_Python()
    {
        using var module = Py.CreateModule("asyncioraw_test_mod", "VALUE = 7\n", register: true);
        using var r = Py.Eval("__import__('asyncioraw_test_mod').VALUE");
        Assert.That(r.As<long>(), Is.EqualTo(7));
        using var own = Py.Eval("__import__('asyncioraw').DotNetError.__name__");
        Assert.That(own.As<string>(), Is.EqualTo("DotNetError"));
    }

    [Test]
    public void Equality_truthiness_and_isinstance()
    {
        using var a = PyConvert.ToPython(new List<int> { 1, 2 });
        Assert.That(a.PyEquals(new[] { 1, 2 }));
        Assert.That(a.IsTrue());
        using var list = Py.Eval("list");
        Assert.That(a.IsInstance(list));
        Assert.That(a.TypeName, Is.EqualTo("list"));
        Assert.That(a.ToString(), Is.EqualTo("[1, 2]"));
    }
}
