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
}
