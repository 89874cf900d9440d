namespace AsyncioRaw.Module;

/// <summary>
/// Keyword arguments and defaults for a module function: a Python function with the declared
/// signature that forwards its parameters, in order and positionally, to the .NET function. Python
/// itself then binds keywords, applies defaults and reports a bad call (a TypeError, as for any
/// Python function), and <c>inspect.signature</c> shows the declared parameters. It costs one Python
/// frame per call, so functions without a signature are not wrapped.
/// </summary>
internal static class Signatures
{
    private const string Source = """
        import inspect as _inspect

        _ALLOWED = (_inspect.Parameter.POSITIONAL_ONLY, _inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    _inspect.Parameter.KEYWORD_ONLY)

        def _with_signature(impl, name, signature, doc):
            namespace = {}
            exec(f"def {name}{signature}: pass", {}, namespace)
            parameters = list(_inspect.signature(namespace[name]).parameters.values())
            for p in parameters:
                if p.kind not in _ALLOWED:
                    raise ValueError(f"{name}{signature}: *args and **kwargs cannot be forwarded to .NET")
                if p.annotation is not p.empty:
                    raise ValueError(f"{name}{signature}: annotations are not supported")
            forward = ", ".join(p.name for p in parameters)
            # The defaults were evaluated once above, in an empty namespace; the real function gets
            # the same values through its own definition.
            glb = {"_impl": impl}
            exec(f"def {name}{signature}:\n    return _impl({forward})", glb)
            function = glb[name]
            function.__doc__ = doc
            function.__qualname__ = name
            return function
        """;

    private static PyObject? s_withSignature;

    /// <summary>Requires the GIL (module creation).</summary>
    internal static PyObject Wrap(PyObject impl, string name, string signature, string? doc)
    {
        s_withSignature ??= Py.Run(Source, fileName: "<asyncioraw module signatures>")["_with_signature"];
        return s_withSignature.Call(impl, name, signature, doc);
    }
}
