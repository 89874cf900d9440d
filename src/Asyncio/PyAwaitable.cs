using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw.Asyncio;

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
    public static Task<PyObject> ToTask(PyObject awaitable, CancellationToken cancellationToken = default) =>
        ToTask<PyObject>(awaitable, null, cancellationToken);

    public static Task<T> ToTask<T>(PyObject awaitable, CancellationToken cancellationToken = default) =>
        ToTask<T>(awaitable, null, cancellationToken);

    public static Task<PyObject> ToTask(PyObject awaitable, EventLoop loop, CancellationToken cancellationToken = default) =>
        ToTask<PyObject>(awaitable, loop, cancellationToken);

    /// <summary>Awaits <paramref name="awaitable"/> on <paramref name="loop"/> (or the current one) and converts the result to <typeparamref name="T"/>.</summary>
    public static unsafe Task<T> ToTask<T>(PyObject awaitable, EventLoop? loop, CancellationToken cancellationToken = default)
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
            var reference = awaitable.Handle;
            CPython.Py_IncRef(reference);
            op.Begin(reference);
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

    /// <summary><c>await pyObject</c>: awaits a Python awaitable on the current loop.</summary>
    public static TaskAwaiter<PyObject> GetAwaiter(this PyObject awaitable) => ToTask(awaitable).GetAwaiter();
}

/// <summary>One .NET await of one Python awaitable.</summary>
internal sealed unsafe class AwaitOperation<T> : OneArgCallback, IAwaitOperation, IPendingOperation, IReportTarget
{
    private readonly EventLoop _loop;
    private readonly PyObject? _context;
    private readonly CancellationTokenSource _cts = new();
    private CancellationTokenRegistration _registration;
    // The asyncio Task or Future (what cancel() goes to) and the reported result: new references,
    // kept raw because they are only touched on the loop thread with the GIL (no finalizer needed).
    private Interop.PyObject* _future;
    private Interop.PyObject* _result;
    private Exception? _error;   // reported by run_and_report, or from Begin
    private volatile bool _pythonDone;
    private volatile bool _cancelRequested;

    internal AwaitOperation(EventLoop loop, PyObject? context)
    {
        _loop = loop;
        _context = context;
        // A scheduled (not promise) task, so that .Wait()/.Result reach LoopTaskScheduler.
        Task = new Task<T>(static s => ((AwaitOperation<T>)s!).TakeResult(), this, _cts.Token);
        Task.Start(loop.Scheduler);
    }

    internal Task<T> Task { get; }

    public bool IsPythonDone => _pythonDone;

    /// <summary>The awaitable, owned, while the start of the await waits in the loop's queue.</summary>
    internal PyObject? Pending;

    internal void BeginPosted()
    {
        var pending = Pending!;
        Pending = null;
        Begin(pending.Detach());
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

    /// <summary>On the loop thread with the GIL. Steals <paramref name="awaitable"/>.</summary>
    internal void Begin(Interop.PyObject* awaitable)
    {
        try
        {
            if (_cancelRequested)
            {
                CloseIfCoroutine(awaitable);
                CPython.Py_DecRef(awaitable);
                _pythonDone = true;
                _cts.Cancel();
                return;
            }
            if (CPython.Py_TYPE(awaitable) == (PyTypeObject*)PyNames.CoroutineType.Handle)
            {
                BeginCoroutine(awaitable);
                return;
            }
            var future = ToFuture(awaitable);
            CPython.Py_DecRef(awaitable);
            _future = future;
            if (PyNames.CallBool0(future, PyNames.done))
            {
                OnDone(future); // already finished: no loop iteration, no callback
                return;
            }
            var callback = Callbacks.OneArg(this);
            var r = PyNames.CallMethod1(future, PyNames.add_done_callback, callback);
            CPython.Py_DecRef(callback);
            PyNames.Check(r);
            _loop.Track(this);
        }
        catch (Exception e)
        {
            ReleaseFuture();
            Fail(e);
        }
    }

    /// <summary>
    /// A coroutine runs in a Task wrapped by run_and_report, which reports the outcome from inside
    /// the task's last step. On 3.12+ the task starts eagerly: a coroutine that never suspends
    /// completes before Begin returns, with no loop iteration at all.
    /// </summary>
    private void BeginCoroutine(Interop.PyObject* coroutine)
    {
        var key = PyConvert.ToPythonRaw(_loop.AddReportTarget(this));
        var args = stackalloc Interop.PyObject*[4];
        args[1] = coroutine;
        args[2] = _loop.Reporter;
        args[3] = key;
        var wrapper = PyObject.VectorcallRaw(PyNames.RunAndReport.Handle, args + 1, 3);
        CPython.Py_DecRef(key);
        CPython.Py_DecRef(coroutine);
        if (wrapper == null) throw PythonException.Fetch();
        try
        {
            // The Task copies the current context when created: enter the caller's first, so the
            // coroutine sees its context variables (create_task's context= needs 3.11).
            bool entered = false;
            if (_context != null && !TaskLocals.IsEntered(_context))
            {
                // Fails only when it is already entered further down the stack, i.e. current
                // anyway for this purpose: go on without entering it again.
                entered = CPython.PyContext_Enter(_context.Handle) == 0;
                if (!entered) CPython.PyErr_Clear();
            }
            Interop.PyObject* task;
            try
            {
                task = PyNames.EagerTask is { } taskType
                    ? EagerTaskRaw(taskType.Handle, wrapper)
                    : PyNames.CallMethod1(_loop.LoopHandle, PyNames.create_task, wrapper);
            }
            finally
            {
                if (entered && CPython.PyContext_Exit(_context!.Handle) != 0) CPython.PyErr_Clear();
            }
            if (task == null) throw PythonException.Fetch();
            if (_pythonDone) CPython.Py_DecRef(task); // reported during the eager first step
            else _future = task;
        }
        finally
        {
            CPython.Py_DecRef(wrapper);
        }
    }

    private static Interop.PyObject* s_eagerKwnames;

    /// <summary>asyncio.Task(wrapper, loop=loop, eager_start=True), 3.12+.</summary>
    private Interop.PyObject* EagerTaskRaw(Interop.PyObject* taskType, Interop.PyObject* wrapper)
    {
        if (s_eagerKwnames == null)
        {
            using var names = PyConvert.ToPython(("loop", "eager_start"));
            s_eagerKwnames = names.Detach(); // kept for the interpreter's life
        }
        var args = stackalloc Interop.PyObject*[4];
        args[1] = wrapper;
        args[2] = _loop.LoopHandle;
        args[3] = CPython.Py_True;
        return CPython.PyObject_Vectorcall(taskType, args + 1, 1 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), s_eagerKwnames);
    }

    /// <summary>From inside the task's last step (loop thread, GIL). <paramref name="value"/> is borrowed.</summary>
    public void OnReport(bool ok, Interop.PyObject* value)
    {
        _pythonDone = true;
        // Unregister, not Dispose: Dispose waits for a cancel callback running on another thread,
        // and this thread holds the GIL that callback may need.
        _registration.Unregister();
        ReleaseFuture();
        if (ok)
        {
            CPython.Py_IncRef(value);
            _result = value;
        }
        else
        {
            int cancelled = CPython.PyObject_IsInstance(value, PyNames.CancelledError.Handle);
            if (cancelled == 1)
            {
                _cts.Cancel();
                return;
            }
            CPython.Py_IncRef(value);
            _error = PythonException.FromPython(value, 0);
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
        bool followed = TaskLocals.t_followExecutionContext;
        TaskLocals.t_followExecutionContext = true;
        try { _loop.Scheduler.Execute(Task); }
        finally { TaskLocals.t_followExecutionContext = followed; }
    }

    /// <summary>New reference to an asyncio future for a non-coroutine awaitable (borrowed).</summary>
    private Interop.PyObject* ToFuture(Interop.PyObject* awaitable)
    {
        int isFuture = CPython.PyObject_IsInstance(awaitable, PyNames.FutureType.Handle);
        PythonException.ThrowIfMinusOne(isFuture);
        if (isFuture == 1)
        {
            CPython.Py_IncRef(awaitable);
            return awaitable;
        }
        // Anything else awaitable (generator-based coroutines, __await__ objects, foreign futures).
        using var ensure = PyObject.FromBorrowedHandle((nint)awaitable);
        using var loop = PyObject.FromBorrowedHandle((nint)_loop.LoopHandle);
        using var future = PyNames.EnsureFuture.Call([ensure], [new KeyValuePair<string, object?>("loop", loop)]);
        return future.Detach();
    }

    private static void CloseIfCoroutine(Interop.PyObject* awaitable)
    {
        if (CPython.Py_TYPE(awaitable) != (PyTypeObject*)PyNames.CoroutineType.Handle) return;
        var r = PyNames.CallMethod0(awaitable, PyNames.close); // no "never awaited" warning
        if (r == null) CPython.PyErr_Clear();
        else CPython.Py_DecRef(r);
    }

    /// <summary>A future's done callback (loop thread, GIL).</summary>
    internal override void Invoke(Interop.PyObject* future)
    {
        // Python code can reach this callback (future._callbacks): only our own future completes us.
        if (future != _future) throw new ArgumentException("this done callback belongs to another future");
        OnDone(future);
    }

    private void OnDone(Interop.PyObject* future)
    {
        if (_pythonDone) return;
        _loop.Untrack(this);
        bool cancelled;
        try
        {
            // A Future subclass may raise from cancelled(): the await then fails with that error
            // instead of never completing.
            cancelled = PyNames.CallBool0(future, PyNames.cancelled);
        }
        catch (Exception e)
        {
            ReleaseFuture();
            Fail(e);
            return;
        }
        _pythonDone = true;
        _registration.Unregister();
        if (cancelled)
        {
            ReleaseFuture();
            _cts.Cancel();
        }
        else
        {
            ExecuteInOwnContext();
        }
    }

    /// <summary>The task's body: runs on the loop thread when Python is done, with the GIL.</summary>
    private T TakeResult()
    {
        if (_error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_error); // keeps its stack trace
        Interop.PyObject* r = _result;
        _result = null;
        if (r == null)
        {
            r = PyNames.CallMethod0(_future, PyNames.result);
            ReleaseFuture();
            if (r == null) throw AsyncErrors.Fetch();
        }
        if (typeof(T) == typeof(PyObject)) return (T)(object)PyObject.Steal(r);
        try { return PyConvert.ToClrRaw<T>(r); }
        finally { CPython.Py_DecRef(r); }
    }

    /// <summary>Loop thread, GIL.</summary>
    private void ReleaseFuture()
    {
        var f = _future;
        _future = null;
        if (f != null) CPython.Py_DecRef(f);
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
        if (_pythonDone || _future == null) return; // not begun yet: Begin sees _cancelRequested
        var r = PyNames.CallMethod0(_future, PyNames.cancel);
        if (r == null) CPython.PyErr_Clear();
        else CPython.Py_DecRef(r);
    }

    void IPendingOperation.OnLoopClosed()
    {
        _pythonDone = true;
        ReleaseFuture();
        if (_result != null) { CPython.Py_DecRef(_result); _result = null; }
        _cts.Cancel();
    }
}
