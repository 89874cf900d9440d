namespace AsyncioRaw;

/// <summary>
/// .NET functions as Python callables (builtin functions: vectorcall, no per-call tuple). Async
/// ones return an awaitable bound to the calling loop; the .NET code runs with the task locals of
/// the Python caller (its loop and a copy of its contextvars context), synchronously up to its first
/// incomplete await, as a coroutine's body would. An exception becomes a Python exception.
/// </summary>
public static unsafe class PyFunction
{
    /// <summary>A synchronous function; arguments arrive converted with <see cref="PyConvert.ToClr"/>.
    /// A <see cref="PyObject"/> the body returns is Python's from then on: its owner is released as
    /// the result is handed over (return <see cref="PyObject.NewReference"/> of one you keep).</summary>
    public static PyObject Create(string name, Func<object?[], object?> body, string? doc = null) =>
        Make(name, doc, body, new Untyped(body));

    // The typed functions: each argument converted to its parameter's type as PyObject.As does
    // (a failed conversion is a TypeError naming the argument), the result with PyConvert.ToPython.
    // `parameters` (optional) names the parameters in order: Python may then pass any of them by
    // keyword, e.g. f(1, b=2), and a bad call (too many, missing, unexpected or repeated arguments)
    // is the TypeError Python gives for a def. Without names they are positional only, like a
    // builtin's. Up to five arguments.

    /// <summary>A synchronous function of no arguments (any argument is a TypeError).</summary>
    public static PyObject Create<TResult>(string name, Func<TResult> body, string? doc = null) =>
        Sync(name, doc, body, 0, null, _ => body());

    /// <summary>A synchronous function of one typed argument.</summary>
    public static PyObject Create<T1, TResult>(string name, Func<T1, TResult> body, string? doc = null, string[]? parameters = null) =>
        Sync(name, doc, body, 1, parameters, a => body(a.Get<T1>(0)));

    /// <summary>A synchronous function of two typed arguments.</summary>
    public static PyObject Create<T1, T2, TResult>(string name, Func<T1, T2, TResult> body, string? doc = null, string[]? parameters = null) =>
        Sync(name, doc, body, 2, parameters, a => body(a.Get<T1>(0), a.Get<T2>(1)));

    /// <summary>A synchronous function of three typed arguments.</summary>
    public static PyObject Create<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, TResult> body, string? doc = null, string[]? parameters = null) =>
        Sync(name, doc, body, 3, parameters, a => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2)));

    /// <summary>A synchronous function of four typed arguments.</summary>
    public static PyObject Create<T1, T2, T3, T4, TResult>(string name, Func<T1, T2, T3, T4, TResult> body, string? doc = null, string[]? parameters = null) =>
        Sync(name, doc, body, 4, parameters, a => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3)));

    /// <summary>A synchronous function of five typed arguments.</summary>
    public static PyObject Create<T1, T2, T3, T4, T5, TResult>(string name, Func<T1, T2, T3, T4, T5, TResult> body, string? doc = null, string[]? parameters = null) =>
        Sync(name, doc, body, 5, parameters, a => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3), a.Get<T5>(4)));

    /// <summary>An async function with converted arguments; the token is cancelled when Python
    /// cancels (or drops) the awaitable.</summary>
    public static PyObject CreateAsync(string name, Func<object?[], CancellationToken, Task<object?>> body, string? doc = null) =>
        Make(name, doc, body, new UntypedAsync(body));

    // Typed async functions, in three shapes per arity: a result and the cancellation token, a
    // result without a token, and no result (with the token). The token is cancelled when Python
    // cancels (or drops) the awaitable.

    /// <summary>An async function of no arguments.</summary>
    public static PyObject CreateAsync<TResult>(string name, Func<CancellationToken, Task<TResult>> body, string? doc = null) =>
        Async<TResult>(name, doc, body, 0, null, (_, ct) => body(ct));

    /// <summary>An async function of no arguments and no result.</summary>
    public static PyObject CreateAsync(string name, Func<CancellationToken, Task> body, string? doc = null) =>
        AsyncVoid(name, doc, body, 0, null, (_, ct) => body(ct));

    /// <summary>An async function of one typed argument, without a cancellation token.</summary>
    public static PyObject CreateAsync<T1, TResult>(string name, Func<T1, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 1, parameters, (a, _) => body(a.Get<T1>(0)), cancellable: false);

    /// <summary>An async function of one typed argument.</summary>
    public static PyObject CreateAsync<T1, TResult>(string name, Func<T1, CancellationToken, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 1, parameters, (a, ct) => body(a.Get<T1>(0), ct));

    /// <summary>An async function of one typed argument and no result.</summary>
    public static PyObject CreateAsync<T1>(string name, Func<T1, CancellationToken, Task> body, string? doc = null, string[]? parameters = null) =>
        AsyncVoid(name, doc, body, 1, parameters, (a, ct) => body(a.Get<T1>(0), ct));

    /// <summary>An async function of two typed arguments, without a cancellation token.</summary>
    public static PyObject CreateAsync<T1, T2, TResult>(string name, Func<T1, T2, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 2, parameters, (a, _) => body(a.Get<T1>(0), a.Get<T2>(1)), cancellable: false);

    /// <summary>An async function of two typed arguments.</summary>
    public static PyObject CreateAsync<T1, T2, TResult>(string name, Func<T1, T2, CancellationToken, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 2, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), ct));

    /// <summary>An async function of two typed arguments and no result.</summary>
    public static PyObject CreateAsync<T1, T2>(string name, Func<T1, T2, CancellationToken, Task> body, string? doc = null, string[]? parameters = null) =>
        AsyncVoid(name, doc, body, 2, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), ct));

    /// <summary>An async function of three typed arguments, without a cancellation token.</summary>
    public static PyObject CreateAsync<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 3, parameters, (a, _) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2)), cancellable: false);

    /// <summary>An async function of three typed arguments.</summary>
    public static PyObject CreateAsync<T1, T2, T3, TResult>(string name, Func<T1, T2, T3, CancellationToken, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 3, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), ct));

    /// <summary>An async function of three typed arguments and no result.</summary>
    public static PyObject CreateAsync<T1, T2, T3>(string name, Func<T1, T2, T3, CancellationToken, Task> body, string? doc = null, string[]? parameters = null) =>
        AsyncVoid(name, doc, body, 3, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), ct));

    /// <summary>An async function of four typed arguments, without a cancellation token.</summary>
    public static PyObject CreateAsync<T1, T2, T3, T4, TResult>(string name, Func<T1, T2, T3, T4, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 4, parameters, (a, _) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3)), cancellable: false);

    /// <summary>An async function of four typed arguments.</summary>
    public static PyObject CreateAsync<T1, T2, T3, T4, TResult>(string name, Func<T1, T2, T3, T4, CancellationToken, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 4, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3), ct));

    /// <summary>An async function of four typed arguments and no result.</summary>
    public static PyObject CreateAsync<T1, T2, T3, T4>(string name, Func<T1, T2, T3, T4, CancellationToken, Task> body, string? doc = null, string[]? parameters = null) =>
        AsyncVoid(name, doc, body, 4, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3), ct));

    /// <summary>An async function of five typed arguments, without a cancellation token.</summary>
    public static PyObject CreateAsync<T1, T2, T3, T4, T5, TResult>(string name, Func<T1, T2, T3, T4, T5, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 5, parameters, (a, _) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3), a.Get<T5>(4)), cancellable: false);

    /// <summary>An async function of five typed arguments.</summary>
    public static PyObject CreateAsync<T1, T2, T3, T4, T5, TResult>(string name, Func<T1, T2, T3, T4, T5, CancellationToken, Task<TResult>> body, string? doc = null, string[]? parameters = null) =>
        Async<TResult>(name, doc, body, 5, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3), a.Get<T5>(4), ct));

    /// <summary>An async function of five typed arguments and no result.</summary>
    public static PyObject CreateAsync<T1, T2, T3, T4, T5>(string name, Func<T1, T2, T3, T4, T5, CancellationToken, Task> body, string? doc = null, string[]? parameters = null) =>
        AsyncVoid(name, doc, body, 5, parameters, (a, ct) => body(a.Get<T1>(0), a.Get<T2>(1), a.Get<T3>(2), a.Get<T4>(3), a.Get<T5>(4), ct));

    private static PyObject Sync<TResult>(string name, string? doc, Delegate body, int count, string[]? names, Func<PyArgs, TResult> call) =>
        Make(name, doc, body, new Typed<TResult>(new PyParameters(name, count, names), call));

    private static PyObject Async<TResult>(string name, string? doc, Delegate body, int count, string[]? names,
        Func<PyArgs, CancellationToken, Task<TResult>> start, bool cancellable = true) =>
        Make(name, doc, body, new TypedAsync<Task<TResult>>(new PyParameters(name, count, names), start, cancellable, &PyFuture.ResultOf<TResult>));

    private static PyObject AsyncVoid(string name, string? doc, Delegate body, int count, string[]? names, Func<PyArgs, CancellationToken, Task> start) =>
        Make(name, doc, body, new TypedAsync<Task>(new PyParameters(name, count, names), start, cancellable: true, &PyFuture.NoResult));

    private static PyObject Make(string name, string? doc, Delegate body, FastCallTarget target)
    {
        ArgumentNullException.ThrowIfNull(body);
        using var gil = Gil.Acquire();
        PyNames.EnsureReady();
        return Callbacks.FastCall(name, doc, target).MoveToObject();
    }

    private static object?[] ConvertAll(PyArgs args)
    {
        if (args.HasKeywords)
            throw new ArgumentException("this .NET function takes no keyword arguments");
        var values = new object?[args.Count];
        nint converted = 0;
        try
        {
            // Each argument is bounded in depth and checked for cycles by PyConvert: a
            // self-containing or too deeply nested one raises ValueError/RecursionError in Python.
            for (; converted < args.Count; converted++) values[converted] = args[converted].ToClr();
            return values;
        }
        finally
        {
            // On failure, release the references already taken now rather than at finalization.
            if (converted < args.Count)
                for (nint i = 0; i < converted; i++) (values[i] as IDisposable)?.Dispose();
        }
    }

    /// <summary>
    /// Runs the body of an async function: task locals and the loop's synchronization context are
    /// set for its synchronous part, then the Task becomes a Python awaitable.
    /// </summary>
    private static NewReference RunAsync<TState, TTask>(scoped TState state, Func<TState, CancellationToken, TTask> start, bool cancellable, delegate*<Task, NewReference> resultOf)
        where TState : allows ref struct
        where TTask : Task
    {
        var loop = EventLoop.Running();
        var cts = cancellable ? new CancellationTokenSource() : null;
        TTask? task = null;
        var previousContext = SynchronizationContext.Current;
        var locals = loop is null ? TaskLocals.Current : new TaskLocals(loop);
        if (loop != null) SynchronizationContext.SetSynchronizationContext(loop.SyncContext);
        // A Python coroutine the body awaits directly is stepped by the awaitable returned here,
        // inside the task of the Python code that awaits it (see PyAwaiter).
        var driver = loop != null && loop.IsOnLoopThread ? Driver.Rent(loop) : null;
        var previousTarget = Callbacks.DirectAwaitTarget;
        Callbacks.DirectAwaitTarget = driver;
        try
        {
            using (TaskLocals.Enter(locals))
                task = start(state, cts?.Token ?? CancellationToken.None);
        }
        finally
        {
            Callbacks.DirectAwaitTarget = previousTarget;
            if (loop != null) SynchronizationContext.SetSynchronizationContext(previousContext);
            // Still inside the Python caller's context: copy it only if the work goes on.
            if (loop != null) locals!.Seal(captureNow: task is { IsCompleted: false });
        }
        if (driver is { HasAwait: true }) return driver.Attach(task!, resultOf, cts);
        driver?.Return();
        return PyFuture.FromTask(task!, resultOf, loop, cts);
    }

    private sealed class Untyped(Func<object?[], object?> body) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args) => PyValues.FromResult(body(ConvertAll(args)));
    }

    private sealed class UntypedAsync(Func<object?[], CancellationToken, Task<object?>> body) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args)
        {
            var values = ConvertAll(args);
            return RunAsync((body, values), static (s, ct) => s.body(s.values, ct), cancellable: true, &PyFuture.ResultOf<object?>);
        }
    }

    /// <summary>A typed function: the arguments bound to the parameters, then converted by <c>call</c>.</summary>
    private sealed class Typed<TResult>(PyParameters parameters, Func<PyArgs, TResult> call) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args) =>
            PyValues.FromResult(call(args.Bind(parameters, stackalloc nint[PyParameters.MaxCount])));
    }

    /// <summary>A typed async function: bound as <see cref="Typed{TResult}"/>; the arguments are
    /// converted as the body starts, inside the caller's task locals.</summary>
    private sealed class TypedAsync<TTask> : FastCallTarget
        where TTask : Task
    {
        private readonly PyParameters _parameters;
        private readonly Func<PyArgs, CancellationToken, TTask> _start;
        private readonly bool _cancellable;
        private readonly delegate*<Task, NewReference> _resultOf;

        internal TypedAsync(PyParameters parameters, Func<PyArgs, CancellationToken, TTask> start, bool cancellable, delegate*<Task, NewReference> resultOf)
        {
            _parameters = parameters;
            _start = start;
            _cancellable = cancellable;
            _resultOf = resultOf;
        }

        internal override NewReference Invoke(PyArgs args) =>
            RunAsync(args.Bind(_parameters, stackalloc nint[PyParameters.MaxCount]), _start, _cancellable, _resultOf);
    }
}
