using AsyncioRaw;

namespace AsyncioRaw.Module;

/// <summary>
/// Defines a Python extension module written in C#: its name, doc, functions (sync and async),
/// async generators and constants. Hand it to <see cref="PyModuleExport.Init"/> from the module's
/// <c>PyInit_&lt;name&gt;</c> (the build writes that entry point when <c>PythonModuleName</c> is
/// set; see build/AsyncioRaw.Module.targets).
/// <para>Arguments are positional and converted to the parameter types as
/// <see cref="PyObject.As{T}"/> does (a wrong type is a TypeError naming the argument; a wrong
/// count is Python's TypeError for functions, as for a builtin, and a ValueError for async generators).
/// Results are converted with <see cref="PyConvert.ToPython"/>. A .NET exception becomes a Python
/// exception whose message starts with the .NET type name.</para>
/// <para>Async functions return an awaitable bound to the calling event loop; the .NET body runs
/// synchronously up to its first incomplete await, and its continuations come back to the loop
/// thread. Cancelling the Python task (or dropping the awaitable unawaited) cancels the
/// <see cref="CancellationToken"/>.</para>
/// </summary>
public sealed class PyModuleBuilder
{
    private readonly List<(string Name, Func<PyObject> Create)> _members = [];
    private readonly Dictionary<string, string?> _docs = [];
    private readonly HashSet<string> _names = [];

    /// <summary>A module named <paramref name="name"/>, which must match the name Python imports
    /// (and the <c>PyInit_</c> entry point).</summary>
    public PyModuleBuilder(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
    }

    /// <summary>The module's name: the file must be <c>&lt;Name&gt;.so</c> and export <c>PyInit_&lt;Name&gt;</c>.</summary>
    public string Name { get; }

    /// <summary>The module's <c>__doc__</c>.</summary>
    public string? Doc { get; set; }

    private PyModuleBuilder Add(string name, Func<PyObject> create, string? doc)
    {
        _docs[name] = doc;
        return Add(name, create);
    }

    private PyModuleBuilder Add(string name, Func<PyObject> create)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_names.Add(name)) throw new ArgumentException($"module {Name} already defines '{name}'", nameof(name));
        _members.Add((name, create));
        return this;
    }

    /// <summary>
    /// Gives the function added last a Python signature, e.g. <c>"(data, *, rounds=1)"</c>: callers
    /// may then pass those parameters by keyword and omit the ones with defaults (Python literals,
    /// evaluated once). The .NET function receives every parameter, positionally, in the declared
    /// order. Costs one Python frame per call. No <c>*args</c>, <c>**kwargs</c> or annotations.
    /// </summary>
    public PyModuleBuilder WithSignature(string signature)
    {
        ArgumentException.ThrowIfNullOrEmpty(signature);
        if (_members.Count == 0) throw new InvalidOperationException("WithSignature applies to the function added last; none was added.");
        var (name, create) = _members[^1];
        if (!_docs.TryGetValue(name, out var doc))
            throw new InvalidOperationException($"WithSignature applies to functions; '{name}' is not one.");
        _members[^1] = (name, () =>
        {
            using var impl = create();
            return Signatures.Wrap(impl, name, signature, doc);
        });
        return this;
    }

    /// <summary>A constant attribute (converted once, when the module is built).</summary>
    public PyModuleBuilder Constant(string name, object? value) => Add(name, () => PyConvert.ToPython(value));

    // ---- synchronous functions ----

    /// <summary>A function Python calls with no arguments; the result is converted to
    /// Python.</summary>
    public PyModuleBuilder Function<TResult>(string name, Func<TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, body, doc), doc);
    }

    /// <summary>A function of one positional argument, converted from Python (TypeError when it
    /// does not convert or the count is wrong).</summary>
    public PyModuleBuilder Function<T1, TResult>(string name, Func<T1, TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, body, doc), doc);
    }

    /// <summary>A function of two positional arguments, converted from Python (TypeError when they
    /// do not convert or their count is wrong).</summary>
    public PyModuleBuilder Function<T1, T2, TResult>(string name, Func<T1, T2, TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, body, doc), doc);
    }

    /// <summary>A function of three positional arguments, converted from Python.</summary>
    public PyModuleBuilder Function<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, body, doc), doc);
    }

    // ---- async functions: Python awaits them ----

    /// <summary>An async function of no arguments: calling it returns an awaitable; its result is
    /// the task's, converted.</summary>
    public PyModuleBuilder AsyncFunction<TResult>(string name, Func<CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc), doc);
    }

    /// <summary>An async function of no arguments whose awaitable gives None.</summary>
    public PyModuleBuilder AsyncFunction(string name, Func<CancellationToken, Task> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc), doc);
    }

    /// <summary>An async function of one positional argument; the token is cancelled when Python
    /// cancels (or drops) the awaitable.</summary>
    public PyModuleBuilder AsyncFunction<T1, TResult>(string name, Func<T1, CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc), doc);
    }

    /// <summary>An async function of one argument whose awaitable gives None.</summary>
    public PyModuleBuilder AsyncFunction<T1>(string name, Func<T1, CancellationToken, Task> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc), doc);
    }

    /// <summary>An async function of two positional arguments.</summary>
    public PyModuleBuilder AsyncFunction<T1, T2, TResult>(string name, Func<T1, T2, CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc), doc);
    }

    /// <summary>An async function of two positional arguments whose awaitable gives None.</summary>
    public PyModuleBuilder AsyncFunction<T1, T2>(string name, Func<T1, T2, CancellationToken, Task> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc), doc);
    }

    /// <summary>An async function of three positional arguments.</summary>
    public PyModuleBuilder AsyncFunction<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc), doc);
    }

    // ---- async generators: Python iterates them with 'async for' ----
    // The enumerator gets a token (declare it with [EnumeratorCancellation] in an async iterator)
    // that is cancelled when Python stops iterating: break, aclose(), its task cancelled, or the
    // iterator collected.

    /// <summary>A function returning an async iterator over the items of <paramref name="body"/>'s
    /// sequence (<c>async for</c>).</summary>
    public PyModuleBuilder AsyncGenerator<T>(string name, Func<IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, args =>
        {
            Arguments.ExpectCount(args, 0, name);
            return PyAsyncStreams.ToPython(body());
        }, doc), doc);
    }

    /// <summary>An async generator function of one argument.</summary>
    public PyModuleBuilder AsyncGenerator<T1, T>(string name, Func<T1, IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, args =>
        {
            Arguments.ExpectCount(args, 1, name);
            return PyAsyncStreams.ToPython(body(Arguments.To<T1>(args, 0, name)));
        }, doc), doc);
    }

    /// <summary>An async generator function of two positional arguments.</summary>
    public PyModuleBuilder AsyncGenerator<T1, T2, T>(string name, Func<T1, T2, IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, args =>
        {
            Arguments.ExpectCount(args, 2, name);
            return PyAsyncStreams.ToPython(body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name)));
        }, doc), doc);
    }

    /// <summary>An async generator function of three positional arguments.</summary>
    public PyModuleBuilder AsyncGenerator<T1, T2, T3, T>(string name, Func<T1, T2, T3, IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, args =>
        {
            Arguments.ExpectCount(args, 3, name);
            return PyAsyncStreams.ToPython(body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name), Arguments.To<T3>(args, 2, name)));
        }, doc), doc);
    }

    /// <summary>
    /// The module's definition for multi-phase initialization: CPython creates the module from it
    /// and then calls <paramref name="exec"/>, in each interpreter that imports it (so a
    /// sub-interpreter is refused there, and on 3.12+ by CPython itself through the
    /// Py_mod_multiple_interpreters slot). Allocated once and never freed: CPython keeps pointers
    /// to it for the life of the process.
    /// </summary>
    internal unsafe ModuleNative.PyModuleDef* CreateDefinition(delegate* unmanaged<nint, int> exec)
    {
        int count = PythonLibrary.Version >= new Version(3, 12) ? 3 : 2;
        var slots = (ModuleNative.PyModuleDef_Slot*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(
            (nuint)(count * sizeof(ModuleNative.PyModuleDef_Slot)));
        slots[0] = new() { slot = ModuleNative.Py_mod_exec, value = (nint)exec };
        if (count == 3)
            slots[1] = new() { slot = ModuleNative.Py_mod_multiple_interpreters, value = ModuleNative.Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED };
        // The last slot stays zeroed: the terminator.

        var def = (ModuleNative.PyModuleDef*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)sizeof(ModuleNative.PyModuleDef));
        def->ob_refcnt = 1;
        def->m_name = ModuleNative.NativeString(Name);
        def->m_doc = Doc is null ? null : ModuleNative.NativeString(Doc);
        def->m_size = 0;
        def->m_slots = (nint)slots;
        return def;
    }

    /// <summary>Adds the members to a module CPython created from our definition. Requires the GIL.</summary>
    internal void Populate(nint module)
    {
        using var view = PyObject.FromBorrowedHandle(module);
        foreach (var (name, create) in _members)
        {
            using var value = create();
            view.SetAttr(name, value);
        }
    }
}
