using AsyncioRaw.Asyncio;

namespace AsyncioRaw.Module;

/// <summary>
/// Defines a Python extension module written in C#: its name, doc, functions (sync and async),
/// async generators and constants. Hand it to <see cref="PyModuleExport.Init"/> from the module's
/// <c>PyInit_&lt;name&gt;</c> (the build writes that entry point when <c>PythonModuleName</c> is
/// set; see build/AsyncioRaw.Module.targets).
/// <para>Arguments are positional and converted to the parameter types as
/// <see cref="PyObject.As{T}"/> does (a wrong type is a TypeError, a wrong count a ValueError).
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
    private readonly HashSet<string> _names = [];

    public PyModuleBuilder(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
    }

    /// <summary>The module's name: the file must be <c>&lt;Name&gt;.so</c> and export <c>PyInit_&lt;Name&gt;</c>.</summary>
    public string Name { get; }

    /// <summary>The module's <c>__doc__</c>.</summary>
    public string? Doc { get; set; }

    private PyModuleBuilder Add(string name, Func<PyObject> create)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_names.Add(name)) throw new ArgumentException($"module {Name} already defines '{name}'", nameof(name));
        _members.Add((name, create));
        return this;
    }

    /// <summary>A constant attribute (converted once, when the module is built).</summary>
    public PyModuleBuilder Constant(string name, object? value) => Add(name, () => PyConvert.ToPython(value));

    // ---- synchronous functions ----

    public PyModuleBuilder Function<TResult>(string name, Func<TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, args =>
        {
            Arguments.ExpectCount(args, 0, name);
            return body();
        }, doc));
    }

    /// <summary>One argument: the interop layer's typed fast path (no argument array).</summary>
    public PyModuleBuilder Function<T1, TResult>(string name, Func<T1, TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, body, doc));
    }

    public PyModuleBuilder Function<T1, T2, TResult>(string name, Func<T1, T2, TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, args =>
        {
            Arguments.ExpectCount(args, 2, name);
            return body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name));
        }, doc));
    }

    public PyModuleBuilder Function<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, TResult> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.Create(name, args =>
        {
            Arguments.ExpectCount(args, 3, name);
            return body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name), Arguments.To<T3>(args, 2, name));
        }, doc));
    }

    // ---- async functions: Python awaits them ----

    public PyModuleBuilder AsyncFunction<TResult>(string name, Func<CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, (args, ct) =>
        {
            Arguments.ExpectCount(args, 0, name);
            return Arguments.Boxed(body(ct));
        }, doc));
    }

    public PyModuleBuilder AsyncFunction(string name, Func<CancellationToken, Task> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, (args, ct) =>
        {
            Arguments.ExpectCount(args, 0, name);
            return Arguments.Boxed(body(ct));
        }, doc));
    }

    /// <summary>One argument: the interop layer's typed path.</summary>
    public PyModuleBuilder AsyncFunction<T1, TResult>(string name, Func<T1, CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc));
    }

    public PyModuleBuilder AsyncFunction<T1>(string name, Func<T1, CancellationToken, Task> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, body, doc));
    }

    public PyModuleBuilder AsyncFunction<T1, T2, TResult>(string name, Func<T1, T2, CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, (args, ct) =>
        {
            Arguments.ExpectCount(args, 2, name);
            return Arguments.Boxed(body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name), ct));
        }, doc));
    }

    public PyModuleBuilder AsyncFunction<T1, T2>(string name, Func<T1, T2, CancellationToken, Task> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, (args, ct) =>
        {
            Arguments.ExpectCount(args, 2, name);
            return Arguments.Boxed(body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name), ct));
        }, doc));
    }

    public PyModuleBuilder AsyncFunction<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, CancellationToken, Task<TResult>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => PyFunction.CreateAsync(name, (args, ct) =>
        {
            Arguments.ExpectCount(args, 3, name);
            return Arguments.Boxed(body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name), Arguments.To<T3>(args, 2, name), ct));
        }, doc));
    }

    // ---- async generators: Python iterates them with 'async for' ----
    // The enumerator gets a token (declare it with [EnumeratorCancellation] in an async iterator)
    // that is cancelled when Python stops iterating: break, aclose(), its task cancelled, or the
    // iterator collected.

    public PyModuleBuilder AsyncGenerator<T>(string name, Func<IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => ReturningObject.Create(name, args =>
        {
            Arguments.ExpectCount(args, 0, name);
            return PyAsyncStreams.ToPython(body());
        }, doc));
    }

    public PyModuleBuilder AsyncGenerator<T1, T>(string name, Func<T1, IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => ReturningObject.Create(name, args =>
        {
            Arguments.ExpectCount(args, 1, name);
            return PyAsyncStreams.ToPython(body(Arguments.To<T1>(args, 0, name)));
        }, doc));
    }

    public PyModuleBuilder AsyncGenerator<T1, T2, T>(string name, Func<T1, T2, IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => ReturningObject.Create(name, args =>
        {
            Arguments.ExpectCount(args, 2, name);
            return PyAsyncStreams.ToPython(body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name)));
        }, doc));
    }

    public PyModuleBuilder AsyncGenerator<T1, T2, T3, T>(string name, Func<T1, T2, T3, IAsyncEnumerable<T>> body, string? doc = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Add(name, () => ReturningObject.Create(name, args =>
        {
            Arguments.ExpectCount(args, 3, name);
            return PyAsyncStreams.ToPython(body(Arguments.To<T1>(args, 0, name), Arguments.To<T2>(args, 1, name), Arguments.To<T3>(args, 2, name)));
        }, doc));
    }

    /// <summary>Creates the module object and its members. Requires the GIL.</summary>
    /// <returns>A new reference to the module.</returns>
    internal unsafe nint Build()
    {
        // The definition must outlive the module: CPython keeps a pointer to it for re-imports
        // (m_copy) for the life of the process, so it is allocated once and never freed.
        var def = (ModuleNative.PyModuleDef*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)sizeof(ModuleNative.PyModuleDef));
        def->ob_refcnt = 1;
        def->m_name = ModuleNative.NativeString(Name);
        def->m_doc = Doc is null ? null : ModuleNative.NativeString(Doc);
        def->m_size = -1;
        nint module = ModuleNative.PyModule_Create2(def);
        if (module == 0) throw new PythonErrorPending();
        try
        {
            using var view = PyObject.FromBorrowedHandle(module);
            foreach (var (name, create) in _members)
            {
                using var value = create();
                view.SetAttr(name, value);
            }
            return module;
        }
        catch
        {
            ModuleNative.Py_DecRef(module);
            throw;
        }
    }
}

/// <summary>A C API call failed and left its Python exception set: PyInit returns NULL with it.</summary>
internal sealed class PythonErrorPending() : Exception("a Python exception is pending");
