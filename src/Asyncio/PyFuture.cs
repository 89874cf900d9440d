namespace AsyncioRaw;

/// <summary>
/// Python awaits .NET (pyo3's <c>future_into_py</c>): a Task becomes a Python awaitable bound to the
/// running loop. A Task that has already completed becomes an object that is done when awaited (no
/// loop iteration, no thread hop). Otherwise it is an asyncio.Future completed on the loop thread when
/// the Task ends; cancelling that future, or dropping it unawaited so it is garbage-collected, cancels
/// the .NET work's token.
/// </summary>
public static unsafe class PyFuture
{
    /// <summary>An awaitable for <paramref name="task"/>: awaiting it gives None, or raises the
    /// task's exception (a cancellation as <c>asyncioraw.DotNetCancelledError</c>). A task already
    /// complete is awaited with no loop iteration; otherwise the result is an asyncio Future on the
    /// running loop. Requires a running loop unless the task is complete.</summary>
    public static PyObject FromTask(Task task) => Wrap(task, &NoResult, null, null);

    /// <summary>As <see cref="FromTask(Task)"/>, giving the task's result converted to
    /// Python.</summary>
    public static PyObject FromTask<T>(Task<T> task) => Wrap(task, &ResultOf<T>, null, null);

    /// <summary>As <see cref="FromTask{T}(Task{T})"/>; a value task already complete allocates no
    /// Task.</summary>
    public static PyObject FromValueTask<T>(ValueTask<T> task) =>
        FromTask(task.IsCompletedSuccessfully ? System.Threading.Tasks.Task.FromResult(task.Result) : task.AsTask());

    /// <summary>As <see cref="FromTask(Task)"/>, for a <see cref="ValueTask"/>.</summary>
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
    /// <exception cref="LoopClosedException">The loop is closed.</exception>
    public static PyObject FromTask<T>(Task<T> task, EventLoop loop) => Wrap(task, &ResultOf<T>, loop, null);

    /// <summary>An awaitable that completes (with None) when <paramref name="task"/> does; its
    /// result stays on the .NET side.</summary>
    internal static PyObject Completion(Task task, EventLoop loop) => Wrap(task, &NoResult, loop, null);

    private static PyObject Wrap(Task task, delegate*<Task, NewReference> resultOf, EventLoop? loop, CancellationTokenSource? cts)
    {
        using var gil = Gil.Acquire();
        return FromTask(task, resultOf, loop, cts).MoveToObject();
    }

    /// <summary>The awaitable for <paramref name="task"/>. Requires the GIL. <paramref name="resultOf"/>
    /// converts the successful task's result.</summary>
    internal static NewReference FromTask(Task task, delegate*<Task, NewReference> resultOf, EventLoop? loop, CancellationTokenSource? cts)
    {
        if (task.IsCompleted)
        {
            if (task.IsCompletedSuccessfully) return NativeTypes.NewReady(resultOf(task), default);
            return NativeTypes.NewReady(default, PyValues.FromException(AsyncErrors.Of(task)));
        }
        loop ??= EventLoop.Running() ?? TaskLocals.Current?.Loop ?? throw new InvalidOperationException(
            "No running Python event loop to bind the awaitable to: convert the Task from code called by a running loop, or pass the EventLoop.");
        var future = loop.OpenLoopObject.CallMethod(PyNames.create_future);
        try
        {
            new CompletionOperation(loop, task, resultOf, cts).Attach(future.Borrow());
            return future;
        }
        catch
        {
            future.Dispose();
            throw;
        }
    }

    /// <summary>A Task&lt;T&gt;'s result as a Python object. Requires the GIL.</summary>
    internal static NewReference ResultOf<T>(Task task) => PyValues.From(((Task<T>)task).Result);

    internal static NewReference NoResult(Task task) => NewReference.None();
}

/// <summary>One pending .NET Task observed by one asyncio.Future.</summary>
internal sealed unsafe class CompletionOperation : OneArgCallback, IPendingOperation
{
    private readonly EventLoop _loop;
    private readonly Task _task;
    private readonly CancellationTokenSource? _cts;
    private readonly delegate*<Task, NewReference> _resultOf;
    private PyObject? _weakFuture;

    internal CompletionOperation(EventLoop loop, Task task, delegate*<Task, NewReference> resultOf, CancellationTokenSource? cts)
    {
        _loop = loop;
        _task = task;
        _resultOf = resultOf;
        _cts = cts;
    }

    /// <summary>Requires the GIL.</summary>
    internal void Attach(PyBorrowed future)
    {
        // Only a weak reference: whoever awaits the future keeps it alive. If nobody does and it
        // is collected, the weakref callback cancels the work.
        using (var onCollected = Callbacks.OneArg(new Collected(this)))
            _weakFuture = PyWeakRefApi.New(future, onCollected.Borrow()).MoveToObject();
        if (_cts != null)
        {
            using var onDone = Callbacks.OneArg(this);
            using (future.CallMethod(PyNames.add_done_callback, onDone.Borrow())) { }
        }
        _loop.Track(this);
        _inFlight = 1;
        AsyncioRawDiagnostics.AwaitStarted(dotnetAwaitsPython: false);
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
        EndInFlight();
        _loop.Untrack(this);
        if (_loop.IsClosed || _weakFuture is null) return;
        using var future = PyWeakRefApi.Referent(PyBorrowed.Of(_weakFuture));
        _weakFuture.Dispose();
        _weakFuture = null;
        if (future.IsNull) return; // collected: nobody is waiting
        var f = future.Borrow();
        if (f.CallMethodIsTrue(PyNames.done)) return; // cancelled by Python meanwhile
        Exception? error = _task.IsCompletedSuccessfully ? null : AsyncErrors.Of(_task);
        if (error is null)
        {
            NewReference value = default;
            try { value = _resultOf(_task); }
            catch (Exception conversion) { error = conversion; } // e.g. no Python form: fail the future, never leave it pending
            if (!value.IsNull)
            {
                using (value)
                using (f.CallMethod(PyNames.set_result, value.Borrow())) { }
                return;
            }
        }
        // Only a cancellation Python asked for (it cancelled the token we own) cancels the future;
        // any other OperationCanceledException (a .NET timeout) is an exception Python can catch.
        if (error is OperationCanceledException && _cts is { IsCancellationRequested: true })
        {
            using (f.CallMethod(PyNames.cancel)) { }
            return;
        }
        using var exc = PyValues.FromException(error!);
        using (f.CallMethod(PyNames.set_exception, exc.Borrow())) { }
    }

    /// <summary>The loop closed first: its futures are gone with it; only our weak reference is left
    /// to release (deferred when this thread does not hold the GIL).</summary>
    private void Abandon()
    {
        EndInFlight();
        _loop.Untrack(this);
        Interlocked.Exchange(ref _weakFuture, null)?.Dispose();
    }

    /// <summary>The future's done callback: a cancelled future cancels the .NET work.</summary>
    internal override void Invoke(PyBorrowed future)
    {
        // Python code can reach this callback (future._callbacks): only our own future counts.
        if (_weakFuture is null) return; // already completed by us
        using (var ours = PyWeakRefApi.Referent(PyBorrowed.Of(_weakFuture)))
            if (ours.IsNull || !future.Is(ours.Borrow()))
                throw new InvalidCastException("this done callback belongs to another future");
        if (_cts != null && future.CallMethodIsTrue(PyNames.cancelled)) CancelWork();
    }

    private void CancelWork()
    {
        try { _cts?.Cancel(); }
        catch (AggregateException e) { _loop.ReportUnhandled(e, "a cancellation callback of .NET work threw"); }
    }

    private sealed class Collected(CompletionOperation op) : OneArgCallback
    {
        internal override void Invoke(PyBorrowed weakref)
        {
            // Python code can reach this callback too: only our weak reference's death counts.
            if (op._weakFuture is not { } ours || !weakref.Is(ours))
                throw new InvalidCastException("this callback belongs to the weak reference of another future");
            if (!op._task.IsCompleted) op.CancelWork();
        }
    }

    void IPendingOperation.OnLoopClosed()
    {
        EndInFlight(); // nothing awaits the future of a closed loop any more
        _cts?.Cancel();
    }

    private int _inFlight; // 1 from Attach until the .NET outcome is delivered or dropped

    private void EndInFlight()
    {
        if (Interlocked.Exchange(ref _inFlight, 0) != 0) AsyncioRawDiagnostics.AwaitEnded(dotnetAwaitsPython: false);
    }
}
