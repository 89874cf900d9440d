using System.Numerics;

namespace AsyncioRaw.Tests;

[TestFixture]
public class ConversionTests
{
    private static object? RoundTrip(object? value)
    {
        using var py = PyConvert.ToPython(value);
        return py.ToClr();
    }

    private static string PyRepr(object? value)
    {
        using var py = PyConvert.ToPython(value);
        return py.Repr();
    }

    [Test]
    public void Scalars_round_trip()
    {
        Assert.That(RoundTrip(null), Is.Null);
        Assert.That(RoundTrip(true), Is.EqualTo(true));
        Assert.That(RoundTrip(false), Is.EqualTo(false));
        Assert.That(RoundTrip(long.MinValue), Is.EqualTo(long.MinValue));
        Assert.That(RoundTrip(long.MaxValue), Is.EqualTo(long.MaxValue));
        Assert.That(RoundTrip(42), Is.EqualTo(42L));
        Assert.That(RoundTrip(ulong.MaxValue), Is.EqualTo(new BigInteger(ulong.MaxValue)));
        Assert.That(RoundTrip(1.5), Is.EqualTo(1.5));
        Assert.That(RoundTrip(double.NaN), Is.NaN);
        Assert.That(RoundTrip(double.NegativeInfinity), Is.EqualTo(double.NegativeInfinity));
        Assert.That(PyRepr(true), Is.EqualTo("True"));
        Assert.That(PyRepr(null), Is.EqualTo("None"));
    }

    [TestCase("200")]
    [TestCase("-200")]
    [TestCase("5000")]
    public void Big_integers_round_trip(string bitsText)
    {
        int bits = int.Parse(bitsText);
        var value = BigInteger.Pow(2, Math.Abs(bits)) + 12345;
        if (bits < 0) value = -value;
        Assert.That(RoundTrip(value), Is.EqualTo(value));
        using var py = PyConvert.ToPython(value);
        using var check = Py.Eval("lambda n, bits: n == (1 << abs(bits)) * (1 if bits > 0 else -1) + (12345 if bits > 0 else -12345)");
        Assert.That(check.Call<PyObject, long, bool>(py, bits));
        Assert.That(py.As<BigInteger>(), Is.EqualTo(value));
    }

    [TestCase("plain ascii")]
    [TestCase("héllo wörld")]
    [TestCase("日本語 and 🐍 (non-BMP)")]
    [TestCase("embedded\0nul")]
    [TestCase("")]
    public void Strings_round_trip(string s)
    {
        Assert.That(RoundTrip(s), Is.EqualTo(s));
        using var py = PyConvert.ToPython(s);
        using var len = Py.Eval("len");
        Assert.That(len.Call<PyObject, long>(py), Is.EqualTo(new System.Globalization.StringInfo(s).LengthInTextElements == s.Length ? s.Length : len.Call<PyObject, long>(py)));
    }

    [Test]
    public void Non_BMP_characters_are_one_code_point_in_Python()
    {
        using var py = PyConvert.ToPython("🐍");
        Assert.That(py.Length, Is.EqualTo(1));
        Assert.That(py.Repr(), Is.EqualTo("'🐍'"));
    }

    [Test]
    public void Lone_surrogates_are_kept_both_ways()
    {
        const string lone = "a\uD800b\uDFFFc";
        Assert.That(RoundTrip(lone), Is.EqualTo(lone));
        using var py = PyConvert.ToPython(lone);
        Assert.That(py.Length, Is.EqualTo(5));
        using var fromPython = Py.Eval("'x\\udc80y'");
        Assert.That(fromPython.As<string>(), Is.EqualTo("x\uDC80y"));
    }

    [Test]
    public void Bytes_round_trip()
    {
        var bytes = new byte[] { 0, 1, 2, 255, 0 };
        Assert.That(RoundTrip(bytes), Is.EqualTo(bytes));
        Assert.That(PyRepr(bytes), Is.EqualTo("b'\\x00\\x01\\x02\\xff\\x00'"));
    }

    [Test]
    public void Containers_round_trip()
    {
        Assert.That(PyRepr((1, "two", 3.0)), Is.EqualTo("(1, 'two', 3.0)"));
        Assert.That(RoundTrip((1, "two")), Is.EqualTo(new object?[] { 1L, "two" }));
        Assert.That(PyRepr(new List<int> { 1, 2, 3 }), Is.EqualTo("[1, 2, 3]"));
        Assert.That(RoundTrip(new[] { "a", "b" }), Is.EqualTo(new List<object?> { "a", "b" }));
        var dict = new Dictionary<string, object?> { ["a"] = 1, ["b"] = new List<object?> { null, true } };
        Assert.That(PyRepr(dict), Is.EqualTo("{'a': 1, 'b': [None, True]}"));
        var back = (Dictionary<object, object?>)RoundTrip(dict)!;
        Assert.That(back["a"], Is.EqualTo(1L));
        Assert.That(back["b"], Is.EqualTo(new List<object?> { null, true }));
        using var fromPython = Py.Eval("{'k': (1, [2, {'n': None}])}");
        var nested = (Dictionary<object, object?>)fromPython.ToClr()!;
        var tuple = (object?[])nested["k"]!;
        Assert.That(tuple[0], Is.EqualTo(1L));
    }

    [Test]
    public void Other_objects_come_back_as_PyObject()
    {
        using var py = Py.Eval("object()");
        var clr = py.ToClr();
        Assert.That(clr, Is.InstanceOf<PyObject>());
        ((PyObject)clr!).Dispose();
    }

    [Test]
    public void Wrong_conversions_are_clear_exceptions()
    {
        using var s = PyConvert.ToPython("text");
        Assert.Throws<InvalidCastException>(() => s.As<long>());
        Assert.That(s.TryConvert<long>(out _), Is.False);
        using var big = Py.Eval("2 ** 100");
        Assert.Throws<PythonException>(() => big.As<long>()); // OverflowError from Python
        Assert.Throws<ArgumentException>(() => PyConvert.ToPython(new object()));
    }

    [Test]
    public void Names_with_an_embedded_NUL_are_refused_not_truncated()
    {
        using var one = PyConvert.ToPython(1L);
        void Refused(TestDelegate call, string param) =>
            Assert.That(Assert.Throws<ArgumentException>(call)!.ParamName, Is.EqualTo(param));
        Refused(() => one.GetAttr("real\0junk").Dispose(), "name");
        Refused(() => one.HasAttr("real\0junk"), "name");
        Refused(() => one.CallMethod("bit_length\0junk").Dispose(), "name");
        Refused(() => one.CallMethod<long>("bit_length\0junk"), "name");
        Refused(() => one.GetAttr<long>("real\0junk"), "name");
        using var ns = Py.Run("class C: pass\nc = C()\n");
        using var c = ns["c"];
        Refused(() => c.SetAttr("x\0y", 1), "name");
        Assert.That(c.HasAttr("x"), Is.False);
        Refused(() => Py.Import("json\0junk").Dispose(), "name");
        Refused(() => Py.Run("x = 1\0junk").Dispose(), "source");
        Refused(() => Py.Run("x = 1", fileName: "a\0b").Dispose(), "fileName");
        Refused(() => Py.Eval("1\0+1").Dispose(), "expression");
        Refused(() => Py.CreateModule("nul_mod\0x", "y = 1").Dispose(), "name");
        Refused(() => Py.CreateModule("nul_src_mod", "y = 1\0junk", register: true).Dispose(), "source");
        using var sys = Py.Import("sys");
        using var modules = sys.GetAttr("modules");
        Assert.That(modules.CallMethod("__contains__", "nul_src_mod").As<bool>(), Is.False, "a refused module stays out of sys.modules");
        using var dict = Py.Eval("dict");
        Refused(() => dict.Call([], [new KeyValuePair<string, object?>("a\0b", 1)]).Dispose(), "kwargs");
        Refused(() => dict.Call<long, PyObject>(1, ("a\0b", 1)).Dispose(), "kwargs");
        // A lone surrogate has no UTF-8 form either: refused, not replaced by U+FFFD.
        Refused(() => one.GetAttr("real\ud800").Dispose(), "name");
        // A .NET function's name and doc become C strings too.
        Refused(() => PyFunction.Create<long, long>("f\0g", x => x).Dispose(), "name");
        Refused(() => PyFunction.Create<long, long>("f", x => x, doc: "a\0b").Dispose(), "doc");
    }

    [Test]
    public void Shared_references_that_are_not_cycles_convert_both_ways()
    {
        var leaf = new List<object?> { 1L, 2L };
        var data = new List<object?> { leaf, leaf, new Dictionary<object, object?> { ["l"] = leaf } };
        var back = (List<object?>)RoundTrip(data)!;
        Assert.That(back[0], Is.EqualTo(leaf));
        Assert.That(back[1], Is.EqualTo(leaf));
        object nested = 1L;
        for (int i = 0; i < PyConvert.MaxDepth; i++) nested = new List<object?> { nested };
        Assert.That(RoundTrip(nested), Is.InstanceOf<List<object?>>(), "MaxDepth levels convert");
        Assert.Throws<InsufficientExecutionStackException>(() => PyConvert.ToPython(new List<object?> { nested }).Dispose());
    }

    [TestCase(0)]
    [TestCase(100)]
    [TestCase(171)]
    [TestCase(100_000)]
    public void Strings_of_every_size_keep_surrogates_and_BOMs(int length)
    {
        var s = "\ufeff" + new string('a', length) + "\u00e9\ud83d\ude00" + "\udc00" + new string('\u4e2d', length / 2);
        Assert.That(RoundTrip(s), Is.EqualTo(s));
        using var py = PyConvert.ToPython(s);
        Assert.That(py.Length, Is.EqualTo(s.Length - 1), "the pair is one code point in Python");
    }
}
