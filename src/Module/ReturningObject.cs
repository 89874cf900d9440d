using AsyncioRaw;

namespace AsyncioRaw.Module;

/// <summary>
/// A module function whose result is a Python object made in .NET (an async iterator), returned
/// with exactly the references Python expects. A PyObject returned from a PyFunction body keeps its
/// own reference until the .NET GC finalizes it, because the interop layer returns a new reference
/// and cannot release the caller's; Python's refcount then never reaches zero when the caller
/// drops the object, so its <c>__del__</c> (for a .NET async iterator: cancelling the enumeration
/// after an early <c>break</c>) waits for a .NET collection. Here the .NET body stores its result in a
/// box object that a small Python wrapper returns, and releases its own reference at once.
/// </summary>
internal static class ReturningObject
{
    private const string WrapperSource = """
        class _Box:
            __slots__ = ('value',)

        def _returning(impl, name, doc):
            def function(*args):
                box = _Box()
                impl(box, *args)
                return box.value
            function.__name__ = function.__qualname__ = name
            function.__doc__ = doc
            return function
        """;

    private static PyObject? s_returning;

    /// <summary>Requires the GIL (module build time, on the importing thread).</summary>
    internal static PyObject Create(string name, Func<object?[], PyObject> body, string? doc)
    {
        using var impl = PyFunction.Create("_" + name + "_impl", args =>
        {
            if (args.Length == 0 || args[0] is not PyObject box)
                throw new ArgumentException($"{name}: internal calling convention violated");
            using (box)
            {
                var rest = args[1..];
                using var result = body(rest);
                box.SetAttr("value", result);
            }
            return null;
        }, doc);
        s_returning ??= Py.Run(WrapperSource, fileName: "<asyncioraw module>")["_returning"];
        return s_returning.Call(impl, name, doc);
    }
}
