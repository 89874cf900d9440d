using AsyncioRaw.Interop;

namespace AsyncioRaw.Asyncio;

/// <summary>
/// Python awaits .NET (pyo3's <c>future_into_py</c>): a Task becomes a Python awaitable bound to the
/// running loop. A Task that has already completed becomes an object that is done when awaited (no
/// loop iteration, no thread hop). Otherwise it is an asyncio.Future completed on the loop thread when
/// the Task ends; cancelling that future, or dropping it unawaited so it is garbage-collected, cancels
/// the .NET work's token.
/// </summary>
public static unsafe class PyFuture
{
    public static PyObject FromTask(Task task) => Wrap(task, &NoResult, null, null);

    public static PyObject FromTask<T>(Task<T> task) => Wrap(task, &ResultOf<T>, null, null);

    public static PyObject FromValueTask<T>(ValueTask<T> task) =>
        FromTask(task.IsCompletedSuccessfully ? System.Threading.Tasks.Task.FromResult(task.Result) : task.AsTask());

    public static PyObject FromValueTask(ValueTask task) => FromTask(task.AsTask());

    /// <summary>Starts <paramref name="work"/> now with a token that Python's cancel() (or the future
    /// being collected unawaited) cancels.</summary>
    public static PyObject Start<T>(Func<CancellationToken, Task<T>> work)
    {
        var cts = new CancellationTokenSource();
        Task<T> task;
        try { task = work(cts.Token); }
        catch (Exception e) { task = System.Threading.Tasks.Task.FromException<T>(e); }
        return Wrap(task, &ResultOf<T>, null, cts);
    }

    /// <summary>The same, bound to <paramref name="loop"/> (any thread may call this).</summary>
    public static PyObject FromTask<T>(Task<T> task, EventLoop loop) => Wrap(task, &ResultOf<T>, loop, null);

    /// <summary>An awaitable that completes (with None) when <paramref name="task"/> does; its
    /// result stays on the .NET side.</summary>
    internal static PyObject Completion(Task task, EventLoop loop) => Wrap(task, &NoResult, loop, null);

    private static PyObject Wrap(Task task, delegate*<Task, Interop.PyObject*> resultOf, EventLoop? loop, CancellationTokenSource? cts)
    {
        using var gil = Gil.Acquire();
        return PyObject.Steal(FromTaskRaw(task, resultOf, loop, cts));
    }

    /// <summary>New reference. Requires the GIL. <paramref name="resultOf"/> converts the
    /// successful task's result (a new reference).</summary>
    internal static Interop.PyObject* FromTaskRaw(Task task, delegate*<Task, Interop.PyObject*> resultOf, EventLoop? loop, CancellationTokenSource? cts)
    {
        if (task.IsCompleted)
        {
            NativeTypes.EnsureReady();
            if (task.IsCompletedSuccessfully) return NativeTypes.NewReady(resultOf(task), null);
            return NativeTypes.NewReady(null, ExceptionBridge.ToPythonRaw(AsyncErrors.Of(task), 0) is var e && e != null ? e : throw PythonException.Fetch());
        }
        loop ??= EventLoop.Running() ?? TaskLocals.Current?.Loop ?? throw new InvalidOperationException(
            "No running Python event loop to bind the awaitable to: convert the Task from code called by a running loop, or pass the EventLoop.");
        var future = PyNames.CallMethod0(loop.OpenLoopHandle, PyNames.create_future);
        if (future == null) throw PythonException.Fetch();
        try
        {
            var op = new CompletionOperation(loop, task, resultOf, cts);
            op.Attach(future);
            return future;
        }
        catch
        {
            CPython.Py_DecRef(future);
            throw;
        }
    }

    /// <summary>New reference to a Task&lt;T&gt;'s result as a Python object. Requires the GIL.</summary>
    internal static Interop.PyObject* ResultOf<T>(Task task) => PyConvert.ToPythonRaw(((Task<T>)task).Result);

    internal static Interop.PyObject* NoResult(Task task) => NewNone();

    private static Interop.PyObject* NewNone()
    {
        CPython.Py_IncRef(CPython.Py_None);
        return CPython.Py_None;
    }
}

/// <summary>One pending .NET Task observed by one asyncio.Future.</summary>
internal sealed unsafe class CompletionOperation : OneArgCallback, IPendingOperation
{
    private readonly EventLoop _loop;
    private readonly Task _task;
    private readonly CancellationTokenSource? _cts;
    private readonly delegate*<Task, Interop.PyObject*> _resultOf;
    private PyObject? _weakFuture;

    internal CompletionOperation(EventLoop loop, Task task, delegate*<Task, Interop.PyObject*> resultOf, CancellationTokenSource? cts)
    {
        _loop = loop;
        _task = task;
        _resultOf = resultOf;
        _cts = cts;
    }

    /// <summary>Requires the GIL; <paramref name="future"/> is borrowed.</summary>
    internal void Attach(Interop.PyObject* future)
    {
        // Only a weak reference: whoever awaits the future keeps it alive. If nobody does and it
        // is collected, the weakref callback cancels the work.
        var onCollected = Callbacks.OneArg(new Collected(this));
        var weak = CPython.PyWeakref_NewRef(future, onCollected);
        CPython.Py_DecRef(onCollected);
        _weakFuture = PyObject.StealOrThrow(weak);
        if (_cts != null)
        {
            var onDone = Callbacks.OneArg(this);
            var r = PyNames.CallMethod1(future, PyNames.add_done_callback, onDone);
            CPython.Py_DecRef(onDone);
            PyNames.Check(r);
        }
        _loop.Track(this);
        _task.ContinueWith(static (_, s) => ((CompletionOperation)s!).OnTaskCompleted(), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void OnTaskCompleted()
    {
        if (_loop.IsOnLoopThread && Gil.HeldByUs) Complete();
        else _loop.PostLoopWork(static s => ((CompletionOperation)s!).Complete(),
            static (s, _) => ((CompletionOperation)s!).Abandon(), this);
    }

    /// <summary>Loop thread, GIL. Never completes a future that is done, nor one of a closed loop.</summary>
    private void Complete()
    {
        _loop.Untrack(this);
        if (_loop.IsClosed || _weakFuture is null) return;
        var future = Referent();
        _weakFuture.Dispose();
        _weakFuture = null;
        if (future == null) return; // collected: nobody is waiting
        try
        {
            if (PyNames.CallBool0(future, PyNames.done)) return; // cancelled by Python meanwhile
            Interop.PyObject* r;
            Exception? error = _task.IsCompletedSuccessfully ? null : AsyncErrors.Of(_task);
            if (error is null)
            {
                Interop.PyObject* value = null;
                try { value = _resultOf(_task); }
                catch (Exception conversion) { error = conversion; } // e.g. no Python form: fail the future, never leave it pending
                if (value != null)
                {
                    r = PyNames.CallMethod1(future, PyNames.set_result, value);
                    CPython.Py_DecRef(value);
                    PyNames.Check(r);
                    return;
                }
            }
            if (error is OperationCanceledException)
            {
                r = PyNames.CallMethod0(future, PyNames.cancel);
            }
            else
            {
                var exc = ExceptionBridge.ToPythonRaw(error!, 0);
                if (exc == null) throw PythonException.Fetch();
                r = PyNames.CallMethod1(future, PyNames.set_exception, exc);
                CPython.Py_DecRef(exc);
            }
            PyNames.Check(r);
        }
        finally
        {
            CPython.Py_DecRef(future);
        }
    }

    /// <summary>The loop closed first: its futures are gone with it; only our weak reference is left
    /// to release (deferred when this thread does not hold the GIL).</summary>
    private void Abandon()
    {
        _loop.Untrack(this);
        Interlocked.Exchange(ref _weakFuture, null)?.Dispose();
    }

    /// <summary>New reference to the future, or NULL when it was collected. Requires the GIL.</summary>
    private Interop.PyObject* Referent()
    {
        if (PythonLibrary.Minor >= 13)
        {
            Interop.PyObject* obj;
            PythonException.ThrowIfMinusOne(CPython.PyWeakref_GetRef(_weakFuture!.Handle, &obj));
            return obj;
        }
        var borrowed = CPython.PyWeakref_GetObject(_weakFuture!.Handle);
        if (borrowed == null) throw PythonException.Fetch();
        if (borrowed == CPython.Py_None) return null;
        CPython.Py_IncRef(borrowed);
        return borrowed;
    }

    /// <summary>The future's done callback: a cancelled future cancels the .NET work.</summary>
    internal override void Invoke(Interop.PyObject* future)
    {
        if (_cts != null && PyNames.CallBool0(future, PyNames.cancelled)) CancelWork();
    }

    private void CancelWork()
    {
        try { _cts?.Cancel(); }
        catch (AggregateException e) { _loop.ReportUnhandled(e, "a cancellation callback of .NET work threw"); }
    }

    private sealed class Collected(CompletionOperation op) : OneArgCallback
    {
        internal override void Invoke(Interop.PyObject* weakref)
        {
            if (!op._task.IsCompleted) op.CancelWork();
        }
    }

    void IPendingOperation.OnLoopClosed() => _cts?.Cancel();
}
