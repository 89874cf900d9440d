using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// The parameters of a .NET function Python calls: how many, and optionally their names. Binds a
/// call's positional and keyword arguments to them as Python binds a <c>def</c>'s, and refuses a bad
/// call with the TypeError Python itself raises (too many positional arguments, an unexpected or
/// repeated keyword, a missing argument), so a caller cannot tell the .NET function from a Python
/// one by its errors. Without names the function takes positional arguments only, like a builtin.
/// </summary>
internal sealed unsafe class PyParameters
{
    /// <summary>The most parameters a typed function has (the longest Func overload offered).</summary>
    internal const int MaxCount = 5;

    private readonly string[]? _names;
    // The names as interned str: a keyword Python code writes is the same interned object, so
    // matching it is a pointer comparison; other str are compared by text.
    private readonly PyObject[]? _interned;

    /// <exception cref="ArgumentException">Names that do not match the count, or an empty or repeated name.</exception>
    internal PyParameters(string function, int count, string[]? names)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MaxCount);
        Function = function;
        Count = count;
        if (names is null) return;
        if (names.Length != count)
            throw new ArgumentException($"{function}() takes {count} argument(s) but {names.Length} parameter name(s) were given.", nameof(names));
        _names = [.. names];
        for (int i = 0; i < _names.Length; i++)
        {
            if (string.IsNullOrEmpty(_names[i])) throw new ArgumentException($"{function}(): parameter {i + 1} has no name.", nameof(names));
            if (Array.IndexOf(_names, _names[i], 0, i) >= 0) throw new ArgumentException($"{function}(): duplicate parameter name '{_names[i]}'.", nameof(names));
        }
        using var gil = Gil.Acquire();
        _interned = new PyObject[count];
        for (int i = 0; i < count; i++) _interned[i] = PyValues.Intern(_names[i]);
    }

    /// <summary>The function's name, for messages.</summary>
    internal string Function { get; }

    internal int Count { get; }

    /// <summary>How Python names argument <paramref name="index"/> in a message.</summary>
    internal string Describe(int index) => _names is null ? $"argument {index + 1}" : $"argument '{_names[index]}'";

    /// <summary>The parameter named by the str <paramref name="keyword"/>, or -1.</summary>
    internal int IndexOf(NativePyObject* keyword, out string? text)
    {
        text = null;
        if (_interned is null) return -1;
        for (int i = 0; i < _interned.Length; i++)
            if (_interned[i].Handle == keyword) return i;
        text = PyConvert.UnicodeToString(keyword);
        return Array.IndexOf(_names!, text);
    }

    internal bool HasNames => _names is not null;

    internal string Name(int index) => _names![index];

    /// <summary>A Python TypeError with <paramref name="message"/>, as the exception to throw. Requires the GIL.</summary>
    internal PythonException TypeError(string message) => PyErrorState.TypeError($"{Function}() {message}");

    /// <summary>"2 positional arguments but 3 were given", Python's wording.</summary>
    internal string TooMany(nint given) =>
        $"takes {Count} positional argument{(Count == 1 ? "" : "s")} but {given} {(given == 1 ? "was" : "were")} given";

    /// <summary>"missing 2 required positional arguments: 'a' and 'b'", Python's wording.</summary>
    internal string Missing(ReadOnlySpan<nint> bound)
    {
        var missing = new List<string>();
        for (int i = 0; i < Count; i++)
            if (bound[i] == 0) missing.Add($"'{Name(i)}'");
        string list = missing.Count switch
        {
            1 => missing[0],
            2 => $"{missing[0]} and {missing[1]}",
            _ => $"{string.Join(", ", missing[..^1])}, and {missing[^1]}",
        };
        return $"missing {missing.Count} required positional argument{(missing.Count == 1 ? "" : "s")}: {list}";
    }
}

internal readonly unsafe ref partial struct PyArgs
{
    private PyArgs(NativePyObject** args, nint count, PyParameters parameters)
    {
        _args = args;
        Count = count;
        _parameters = parameters;
    }

    /// <summary>
    /// The arguments in parameter order, all positional: these arguments themselves when they
    /// already are (no keywords, the right count), else the keyword ones put in place in
    /// <paramref name="slots"/> (stack memory of at least <see cref="PyParameters.MaxCount"/>).
    /// </summary>
    /// <exception cref="PythonException">The TypeError Python raises for the same call of a def.</exception>
    internal PyArgs Bind(PyParameters parameters, Span<nint> slots)
    {
        nint keywords = _kwnames == null ? 0 : CPython.PyTuple_Size(_kwnames);
        if (Count > parameters.Count) throw parameters.TypeError(parameters.TooMany(Count));
        if (keywords == 0)
        {
            if (Count == parameters.Count) return new PyArgs(_args, Count, parameters);
            if (!parameters.HasNames) throw parameters.TypeError(parameters.TooMany(Count));
        }
        else if (!parameters.HasNames) throw parameters.TypeError("takes no keyword arguments");

        var bound = slots[..parameters.Count];
        bound.Clear();
        for (int i = 0; i < Count; i++) bound[i] = (nint)_args[i];
        for (int k = 0; k < keywords; k++)
        {
            var keyword = CPython.PyTuple_GetItem(_kwnames, k);
            int index = parameters.IndexOf(keyword, out var text);
            if (index < 0) throw parameters.TypeError($"got an unexpected keyword argument '{text}'");
            if (bound[index] != 0) throw parameters.TypeError($"got multiple values for argument '{parameters.Name(index)}'");
            bound[index] = (nint)_args[Count + k];
        }
        if (bound.Contains(0)) throw parameters.TypeError(parameters.Missing(bound));
        fixed (nint* p = bound) return new PyArgs((NativePyObject**)p, parameters.Count, parameters);
    }

    /// <summary>Argument <paramref name="index"/> converted to <typeparamref name="T"/> (see
    /// <see cref="PyConvert"/>); a failed conversion names the argument.</summary>
    internal T Get<T>(int index)
    {
        var arg = this[index];
        try { return arg.As<T>(); }
        catch (InvalidCastException e) when (_parameters is not null)
        {
            throw new InvalidCastException($"{_parameters.Function}() {_parameters.Describe(index)}: {e.Message}", e);
        }
    }
}
