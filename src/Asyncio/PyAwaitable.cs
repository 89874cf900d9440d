using System.Runtime.CompilerServices;

namespace AsyncioRaw;

/// <summary>
/// .NET awaits Python (pyo3's <c>into_future</c>): any awaitable — a coroutine, an asyncio Future or
/// Task, a generator-based coroutine, an object with <c>__await__</c> — becomes a Task, scheduled on
/// the loop of the current <see cref="TaskLocals"/> (or the loop running on this thread). The result
/// is a new reference the caller owns. Cancelling the token cancels the Python task; Python's
/// CancelledError surfaces as a canceled Task. Blocking on the Task from the loop's own thread throws
/// instead of deadlocking.
/// </summary>
public static class PyAwaitable
{
    /// <summary>Awaits <paramref name="awaitable"/> on the current loop; the result is a new
    /// reference the caller owns.</summary>
    public static Task<PyObject> ToTask(PyObject awaitable, CancellationToken cancellationToken = default) =>
        ToTask<PyObject>(awaitable, null, cancellationToken);

    /// <summary>Awaits <paramref name="awaitable"/> on the current loop and converts the result to
    /// <typeparamref name="T"/>.</summary>
    public static Task<T> ToTask<T>(PyObject awaitable, CancellationToken cancellationToken = default) =>
        ToTask<T>(awaitable, null, cancellationToken);

    /// <summary>Awaits <paramref name="awaitable"/> on <paramref name="loop"/> (work is posted to
    /// its thread when called from elsewhere).</summary>
    public static Task<PyObject> ToTask(PyObject awaitable, EventLoop loop, CancellationToken cancellationToken = default) =>
        ToTask<PyObject>(awaitable, loop, cancellationToken);

    /// <summary>Awaits <paramref name="awaitable"/> on <paramref name="loop"/> (or the current one) and converts the result to <typeparamref name="T"/>.</summary>
    /// <exception cref="LoopClosedException">The loop is closed.</exception>
    public static Task<T> ToTask<T>(PyObject awaitable, EventLoop? loop, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(awaitable);
        var locals = TaskLocals.Current;
        using var gil = Gil.Acquire();
        loop ??= locals?.Loop ?? EventLoop.Running() ?? throw TaskLocalsMissing();
        loop.ThrowIfClosed();
        var context = ReferenceEquals(locals?.Loop, loop) ? locals!.Context : null;
        var op = new AwaitOperation<T>(loop, context);
        if (loop.IsOnLoopThread)
        {
            op.Begin(PyBorrowed.Of(awaitable));
        }
        else
        {
            // Starting the await is loop work: if the loop closes first, the operation fails and the
            // reference is released (deferred, without the GIL), never used off the loop thread.
            op.Pending = awaitable.NewReference();
            loop.PostLoopWork(static s => ((AwaitOperation<T>)s!).BeginPosted(),
                static (s, e) => ((AwaitOperation<T>)s!).Abandon(e), op);
        }
        if (cancellationToken.CanBeCanceled) op.RegisterCancellation(cancellationToken);
        return op.Task;
    }

    private static InvalidOperationException TaskLocalsMissing()
    {
        try { TaskLocals.Require(); }
        catch (InvalidOperationException e) { return e; }
        return new InvalidOperationException("No event loop.");
    }

    /// <summary><c>await pyObject</c>: awaits a Python awaitable on the current loop; a coroutine
    /// awaited from .NET code that a Python task is running is stepped inside that task (see
    /// <see cref="PyAwaiter{T}"/>). The result is a new reference the caller owns.</summary>
    public static PyAwaiter<PyObject> GetAwaiter(this PyObject awaitable) => new(awaitable);

    /// <summary><c>await PyAwaitable.Of&lt;T&gt;(coroutine)</c>: awaits it at once, as Python's own
    /// <c>await</c> would where a Python task runs this .NET code (no Task, the same
    /// <c>current_task()</c>, context and cancellation), and converts the result to
    /// <typeparamref name="T"/>. To keep or combine the await, use <see cref="ToTask{T}(PyObject, CancellationToken)"/>.</summary>
    public static PyAwaitableOf<T> Of<T>(PyObject awaitable) => new(awaitable);

    /// <summary><c>await pyObject.AsTask(ct)</c>: <c>await pyObject</c> with cancellation. Cancelling
    /// <paramref name="cancellationToken"/> cancels the Python task (its coroutine sees
    /// CancelledError) and the Task ends canceled. As <see cref="ToTask(PyObject, CancellationToken)"/>;
    /// the result is a new reference the caller owns.</summary>
    public static Task<PyObject> AsTask(this PyObject awaitable, CancellationToken cancellationToken = default) =>
        ToTask<PyObject>(awaitable, null, cancellationToken);

    /// <summary><c>await pyObject.AsTask&lt;long&gt;(ct)</c>: as <see cref="AsTask(PyObject, CancellationToken)"/>,
    /// with the result converted to <typeparamref name="T"/>.</summary>
    public static Task<T> AsTask<T>(this PyObject awaitable, CancellationToken cancellationToken = default) =>
        ToTask<T>(awaitable, null, cancellationToken);
}

/// <summary>One .NET await of one Python awaitable.</summary>
internal sealed class AwaitOperation<T> : OneArgCallback, IAwaitOperation, IPendingOperation, IReportTarget
{
    private static readonly PythonLazy s_eagerKeywords = new(static () => PyConvert.ToPython(("loop", "eager_start")));

    private readonly EventLoop _loop;
    private readonly PyObject? _context;
    private readonly CancellationTokenSource _cts = new();
    private CancellationTokenRegistration _registration;
    // The asyncio Task or Future (what cancel() goes to) and the reported result. Only touched on
    // the loop thread with the GIL, so no finalizer is needed: every path releases them.
    private PyRef _future;
    private PyRef _result;
    private Exception? _error;   // reported by run_and_report, or from Begin
    private volatile bool _pythonDone;
    private volatile bool _cancelRequested;
    private bool _reportsOutcome; // a coroutine run by run_and_report, rather than a future we watch

    internal AwaitOperation(EventLoop loop, PyObject? context)
    {
        _loop = loop;
        _context = context;
        // A scheduled (not promise) task, so that .Wait()/.Result reach LoopTaskScheduler.
        Task = new Task<T>(static s => ((AwaitOperation<T>)s!).TakeResult(), this, _cts.Token);
        Task.Start(loop.Scheduler);
        AsyncioRawDiagnostics.AwaitStarted(dotnetAwaitsPython: true);
    }

    private int _inFlight = 1; // until the Task ends: TakeResult runs, or the token cancels it

    private void EndInFlight()
    {
        if (Interlocked.Exchange(ref _inFlight, 0) != 0) AsyncioRawDiagnostics.AwaitEnded(dotnetAwaitsPython: true);
    }

    /// <summary>Ends the Task as Canceled (the scheduler lets go of it at once).</summary>
    private void CancelTask()
    {
        EndInFlight();
        _cts.Cancel();
    }

    internal Task<T> Task { get; }

    public bool IsPythonDone => _pythonDone;

    /// <summary>The awaitable, owned, while the start of the await waits in the loop's queue.</summary>
    internal PyObject? Pending;

    internal void BeginPosted()
    {
        using var pending = Pending!;
        Pending = null;
        // Posted before the loop began shutting down, started after: it would only be cancelled.
        if (_loop.RefusesNewWork) Fail(_loop.Closed());
        else Begin(PyBorrowed.Of(pending));
    }

    /// <summary>The loop closed before the await could start. Any thread, maybe without the GIL.</summary>
    internal void Abandon(Exception reason)
    {
        Pending?.Dispose();
        Pending = null;
        Fail(reason);
    }

    /// <summary>Completes the .NET task with <paramref name="error"/>; touches no Python object.</summary>
    private void Fail(Exception error)
    {
        _registration.Unregister();
        _error = error;
        _pythonDone = true;
        _loop.Scheduler.Execute(Task);
    }

    /// <summary>Starts awaiting. On the loop thread with the GIL.</summary>
    internal void Begin(PyBorrowed awaitable)
    {
        try
        {
            if (_cancelRequested)
            {
                CloseIfCoroutine(awaitable);
                _pythonDone = true;
                CancelTask();
                return;
            }
            if (awaitable.HasExactType(PyNames.CoroutineType))
            {
                BeginCoroutine(awaitable);
                return;
            }
            var future = ToFuture(awaitable);
            _future.Set(ref future);
            if (_future.Borrow().CallMethodIsTrue(PyNames.done))
            {
                OnDone(); // already finished: no loop iteration, no callback
                return;
            }
            using var callback = Callbacks.OneArg(this);
            using (_future.Borrow().CallMethod(PyNames.add_done_callback, callback.Borrow())) { }
            _loop.Track(this);
        }
        catch (Exception e)
        {
            _future.Release();
            Fail(e);
        }
    }

    /// <summary>
    /// A coroutine runs in a Task wrapped by run_and_report, which reports the outcome from inside
    /// the task's last step. On 3.12+ the task starts eagerly: a coroutine that never suspends
    /// completes before Begin returns, with no loop iteration at all.
    /// </summary>
    private void BeginCoroutine(PyBorrowed coroutine)
    {
        NewReference task;
        using (var key = PyValues.Int64(_loop.AddReportTarget(this)))
        using (var wrapper = PyBorrowed.Of(PyNames.RunAndReport).Call(coroutine, PyBorrowed.Of(_loop.Reporter), key.Borrow()))
        {
            // The Task copies the current context when created: enter the caller's first, so the
            // coroutine sees its context variables (create_task's context= needs 3.11). Entering
            // fails only when it is already entered further down the stack, i.e. current anyway.
            bool entered = _context != null && !TaskLocals.IsEntered(_context) && PyContextApi.TryEnter(PyBorrowed.Of(_context));
            try
            {
                task = PyNames.EagerTask is { } taskType
                    ? PyBorrowed.Of(taskType).CallWithKeywords(wrapper.Borrow(), PyBorrowed.Of(s_eagerKeywords.Value), _loop.LoopObject, PyBorrowed.True)
                    : _loop.LoopObject.CallMethod(PyNames.create_task, wrapper.Borrow());
            }
            finally
            {
                if (entered) PyContextApi.Exit(PyBorrowed.Of(_context!));
            }
        }
        _reportsOutcome = true;
        if (_pythonDone) task.Dispose(); // reported during the eager first step
        else _future.Set(ref task);
    }

    /// <summary>From inside the task's last step (loop thread, GIL).</summary>
    public void OnReport(bool ok, PyBorrowed value)
    {
        _pythonDone = true;
        // Unregister, not Dispose: Dispose waits for a cancel callback running on another thread,
        // and this thread holds the GIL that callback may need.
        _registration.Unregister();
        _future.Release();
        if (ok)
        {
            var result = NewReference.To(value);
            _result.Set(ref result);
        }
        else
        {
            try
            {
                // A CancelledError stays inside the canceled Task, so that .NET code that lets it
                // propagate back into Python re-raises Python's own CancelledError.
                _error = AsyncErrors.ForAwait(PyErrorState.ToException(value), _cts.Token);
            }
            catch (Exception e)
            {
                _error = e; // isinstance() itself failed: that is the outcome the caller sees
            }
        }
        ExecuteInOwnContext();
    }

    /// <summary>
    /// Completes the .NET task; continuations inlined here resume in the contextvars context of
    /// their own task locals (entered as .NET restores their ExecutionContext), not in that of the
    /// Python task whose last step is running: awaiting another task must not leak its variables.
    /// </summary>
    private void ExecuteInOwnContext()
    {
        bool followed = Callbacks.FollowExecutionContext;
        Callbacks.FollowExecutionContext = true;
        try { _loop.Scheduler.Execute(Task); }
        finally { Callbacks.FollowExecutionContext = followed; }
    }

    /// <summary>An asyncio future for a non-coroutine awaitable.</summary>
    private NewReference ToFuture(PyBorrowed awaitable)
    {
        if (awaitable.IsInstanceOf(PyNames.FutureType)) return NewReference.To(awaitable);
        // Anything else awaitable (generator-based coroutines, __await__ objects, foreign futures).
        using var ensure = awaitable.ToOwned();
        using var loop = _loop.LoopObject.ToOwned();
        return NewReference.MoveFrom(PyNames.EnsureFuture.Call([ensure], [new KeyValuePair<string, object?>("loop", loop)]));
    }

    private static void CloseIfCoroutine(PyBorrowed awaitable)
    {
        if (awaitable.HasExactType(PyNames.CoroutineType))
            awaitable.TryCallMethod(PyNames.close); // no "never awaited" warning
    }

    /// <summary>A future's done callback (loop thread, GIL).</summary>
    internal override void Invoke(PyBorrowed future)
    {
        if (_pythonDone) return; // reported already (see CancelFuture)
        // Python code can reach this callback (future._callbacks): only our own future completes us.
        if (_future.IsNull || !future.Is(_future.Borrow()))
            throw new InvalidCastException("this done callback belongs to another future");
        OnDone();
    }

    private void OnDone()
    {
        if (_pythonDone) return;
        _loop.Untrack(this);
        bool cancelled;
        try
        {
            // A Future subclass may raise from cancelled(): the await then fails with that error
            // instead of never completing.
            cancelled = _future.Borrow().CallMethodIsTrue(PyNames.cancelled);
        }
        catch (Exception e)
        {
            _future.Release();
            Fail(e);
            return;
        }
        _pythonDone = true;
        _registration.Unregister();
        if (cancelled)
        {
            _future.Release();
            CancelTask();
        }
        else
        {
            ExecuteInOwnContext();
        }
    }

    /// <summary>The task's body: runs on the loop thread when Python is done, with the GIL.</summary>
    private T TakeResult()
    {
        EndInFlight();
        if (_error is PythonCancelledException) _cts.Cancel(); // the Task ends Canceled, with this exception
        if (_error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_error); // keeps its stack trace
        var result = _result.Take();
        if (result.IsNull)
        {
            try { result = _future.Borrow().CallMethod(PyNames.result); }
            catch (PythonException e) when (AsyncErrors.ForAwait(e) is var mapped && !ReferenceEquals(mapped, e)) { throw mapped; }
            finally { _future.Release(); }
        }
        if (typeof(T) == typeof(PyObject)) return (T)(object)result.MoveToObject();
        try { return result.Borrow().As<T>(); }
        finally { result.Dispose(); }
    }

    internal void RegisterCancellation(CancellationToken token)
    {
        if (_pythonDone) return;
        _registration = token.UnsafeRegister(static s => ((AwaitOperation<T>)s!).CancelFromDotNet(), this);
    }

    private void CancelFromDotNet()
    {
        if (_pythonDone) return;
        _cancelRequested = true;
        if (_loop.IsOnLoopThread && Gil.HeldByUs) CancelFuture();
        else _loop.PostLoopWork(static s => ((AwaitOperation<T>)s!).CancelFuture(), static (_, _) => { }, this); // a closed loop ends the await itself
    }

    private void CancelFuture()
    {
        if (_pythonDone || _future.IsNull) return; // not begun yet: Begin sees _cancelRequested
        var future = _future.Borrow();
        if (!future.TryCallMethod(PyNames.cancel) || !_reportsOutcome) return;
        // A task cancelled before its first step throws CancelledError into run_and_report before
        // its try block: nothing would ever report. Its done callback ends the await then (and
        // finds it already reported in every other case).
        using var callback = Callbacks.OneArg(this);
        future.TryCallMethod(PyNames.add_done_callback, callback.Borrow());
    }

    /// <summary>Loop thread (or the thread that collected an adopted loop), GIL.</summary>
    void IPendingOperation.OnLoopClosed()
    {
        _pythonDone = true;
        _future.Release();
        _result.Release();
        CancelTask();
    }
}
