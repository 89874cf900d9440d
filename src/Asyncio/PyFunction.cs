namespace AsyncioRaw;

/// <summary>
/// .NET functions as Python callables (builtin functions: vectorcall, no per-call tuple). Async
/// ones return an awaitable bound to the calling loop; the .NET code runs with the task locals of
/// the Python caller (its loop and a copy of its contextvars context), synchronously up to its first
/// incomplete await, as a coroutine's body would. An exception becomes a Python exception.
/// </summary>
public static unsafe class PyFunction
{
    /// <summary>A synchronous function; arguments arrive converted with <see cref="PyConvert.ToClr"/>.</summary>
    public static PyObject Create(string name, Func<object?[], object?> body, string? doc = null) =>
        Make(name, doc, new Sync(body));

    /// <summary>A synchronous function of one argument converted to <typeparamref name="T1"/>
    /// (TypeError when it does not convert), with no argument array.</summary>
    public static PyObject Create<T1, TResult>(string name, Func<T1, TResult> body, string? doc = null) =>
        Make(name, doc, new Sync1<T1, TResult>(body));

    /// <summary>An async function with converted arguments; the token is cancelled when Python
    /// cancels (or drops) the awaitable.</summary>
    public static PyObject CreateAsync(string name, Func<object?[], CancellationToken, Task<object?>> body, string? doc = null) =>
        Make(name, doc, new Async(body));

    /// <summary>An async function of one argument, not cancellable from Python (cancelling the
    /// awaitable only stops waiting).</summary>
    public static PyObject CreateAsync<T1, TResult>(string name, Func<T1, Task<TResult>> body, string? doc = null) =>
        Make(name, doc, new Async1<T1, TResult>((a, _) => body(a), cancellable: false));

    /// <summary>An async function of one argument; the token is cancelled when Python cancels (or
    /// drops) the awaitable.</summary>
    public static PyObject CreateAsync<T1, TResult>(string name, Func<T1, CancellationToken, Task<TResult>> body, string? doc = null) =>
        Make(name, doc, new Async1<T1, TResult>(body, cancellable: true));

    /// <summary>An async function of one argument whose awaitable gives None; the token is
    /// cancelled when Python cancels (or drops) it.</summary>
    public static PyObject CreateAsync<T1>(string name, Func<T1, CancellationToken, Task> body, string? doc = null) =>
        Make(name, doc, new Async1Void<T1>(body));

    private static PyObject Make(string name, string? doc, FastCallTarget target)
    {
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
    private static NewReference RunAsync<TState, TTask>(TState state, Func<TState, CancellationToken, TTask> start, bool cancellable, delegate*<Task, NewReference> resultOf)
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

    private sealed class Sync(Func<object?[], object?> body) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args) => PyValues.From(body(ConvertAll(args)));
    }

    private sealed class Sync1<T1, TResult>(Func<T1, TResult> body) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args)
        {
            args.ExpectPositional(1, "this .NET function");
            return PyValues.From(body(args[0].As<T1>()));
        }
    }

    private sealed class Async(Func<object?[], CancellationToken, Task<object?>> body) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args)
        {
            var values = ConvertAll(args);
            return RunAsync((body, values), static (s, ct) => s.body(s.values, ct), cancellable: true, &PyFuture.ResultOf<object?>);
        }
    }

    private sealed class Async1<T1, TResult>(Func<T1, CancellationToken, Task<TResult>> body, bool cancellable) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args)
        {
            args.ExpectPositional(1, "this .NET function");
            var a1 = args[0].As<T1>();
            return RunAsync((body, a1), static (s, ct) => s.body(s.a1, ct), cancellable, &PyFuture.ResultOf<TResult>);
        }
    }

    private sealed class Async1Void<T1>(Func<T1, CancellationToken, Task> body) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args)
        {
            args.ExpectPositional(1, "this .NET function");
            var a1 = args[0].As<T1>();
            return RunAsync((body, a1), static (s, ct) => s.body(s.a1, ct), cancellable: true, &PyFuture.NoResult);
        }
    }
}
