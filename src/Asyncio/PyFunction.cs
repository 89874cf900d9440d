using AsyncioRaw.Interop;

namespace AsyncioRaw.Asyncio;

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

    public static PyObject Create<T1, TResult>(string name, Func<T1, TResult> body, string? doc = null) =>
        Make(name, doc, new Sync1<T1, TResult>(body));

    /// <summary>An async function with converted arguments; the token is cancelled when Python
    /// cancels (or drops) the awaitable.</summary>
    public static PyObject CreateAsync(string name, Func<object?[], CancellationToken, Task<object?>> body, string? doc = null) =>
        Make(name, doc, new Async(body));

    public static PyObject CreateAsync<T1, TResult>(string name, Func<T1, Task<TResult>> body, string? doc = null) =>
        Make(name, doc, new Async1<T1, TResult>((a, _) => body(a), cancellable: false));

    public static PyObject CreateAsync<T1, TResult>(string name, Func<T1, CancellationToken, Task<TResult>> body, string? doc = null) =>
        Make(name, doc, new Async1<T1, TResult>(body, cancellable: true));

    public static PyObject CreateAsync<T1>(string name, Func<T1, CancellationToken, Task> body, string? doc = null) =>
        Make(name, doc, new Async1Void<T1>(body));

    private static PyObject Make(string name, string? doc, FastCallTarget target)
    {
        using var gil = Gil.Acquire();
        PyNames.EnsureReady();
        return PyObject.Steal(Callbacks.FastCall(name, doc, target));
    }

    private static void CheckArity(nint nargs, int expected, Interop.PyObject* kwnames, string what)
    {
        if (kwnames != null && CPython.PyTuple_Size(kwnames) > 0)
            throw new ArgumentException($"{what} takes no keyword arguments");
        if (nargs != expected)
            throw new ArgumentException($"{what} takes {expected} positional argument(s) but {nargs} were given");
    }

    private static object?[] ConvertAll(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames)
    {
        if (kwnames != null && CPython.PyTuple_Size(kwnames) > 0)
            throw new ArgumentException("this .NET function takes no keyword arguments");
        var values = new object?[nargs];
        for (nint i = 0; i < nargs; i++) values[i] = PyConvert.ToClrRaw(args[i]);
        return values;
    }

    /// <summary>
    /// Runs the body of an async function: task locals and the loop's synchronization context are
    /// set for its synchronous part, then the Task becomes a Python awaitable.
    /// </summary>
    private static Interop.PyObject* RunAsync<TState, TTask>(TState state, Func<TState, CancellationToken, TTask> start, bool cancellable, delegate*<Task, Interop.PyObject*> resultOf)
        where TTask : Task
    {
        var loop = EventLoop.Running();
        var cts = cancellable ? new CancellationTokenSource() : null;
        TTask? task = null;
        var previousContext = SynchronizationContext.Current;
        var locals = loop is null ? TaskLocals.Current : new TaskLocals(loop);
        if (loop != null) SynchronizationContext.SetSynchronizationContext(loop.SyncContext);
        try
        {
            using (TaskLocals.Enter(locals))
                task = start(state, cts?.Token ?? CancellationToken.None);
        }
        finally
        {
            if (loop != null) SynchronizationContext.SetSynchronizationContext(previousContext);
            // Still inside the Python caller's context: copy it only if the work goes on.
            if (loop != null) locals!.Seal(captureNow: task is { IsCompleted: false });
        }
        return PyFuture.FromTaskRaw(task!, resultOf, loop, cts);
    }

    private sealed class Sync(Func<object?[], object?> body) : FastCallTarget
    {
        internal override Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames) =>
            PyConvert.ToPythonRaw(body(ConvertAll(args, nargs, kwnames)));
    }

    private sealed class Sync1<T1, TResult>(Func<T1, TResult> body) : FastCallTarget
    {
        internal override Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames)
        {
            CheckArity(nargs, 1, kwnames, "this .NET function");
            return PyConvert.ToPythonRaw(body(PyConvert.ToClrRaw<T1>(args[0])));
        }
    }

    private sealed class Async(Func<object?[], CancellationToken, Task<object?>> body) : FastCallTarget
    {
        internal override Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames)
        {
            var values = ConvertAll(args, nargs, kwnames);
            return RunAsync((body, values), static (s, ct) => s.body(s.values, ct), cancellable: true, &PyFuture.ResultOf<object?>);
        }
    }

    private sealed class Async1<T1, TResult>(Func<T1, CancellationToken, Task<TResult>> body, bool cancellable) : FastCallTarget
    {
        internal override Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames)
        {
            CheckArity(nargs, 1, kwnames, "this .NET function");
            var a1 = PyConvert.ToClrRaw<T1>(args[0]);
            return RunAsync((body, a1), static (s, ct) => s.body(s.a1, ct), cancellable, &PyFuture.ResultOf<TResult>);
        }
    }

    private sealed class Async1Void<T1>(Func<T1, CancellationToken, Task> body) : FastCallTarget
    {
        internal override Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames)
        {
            CheckArity(nargs, 1, kwnames, "this .NET function");
            var a1 = PyConvert.ToClrRaw<T1>(args[0]);
            return RunAsync((body, a1), static (s, ct) => s.body(s.a1, ct), cancellable: true, &PyFuture.NoResult);
        }
    }
}
