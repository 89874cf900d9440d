using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// <c>await PyAwaitable.Of&lt;T&gt;(coroutine)</c> (and <c>await pyObject</c>): where the .NET code
/// runs inside a step of a Python task (the .NET main of <see cref="Asyncio.Run{T}(Func{CancellationToken, Task{T}})"/>, a .NET async
/// function a Python coroutine awaits), the coroutine is stepped inside that same task, as Python's
/// own <c>await</c> would: no asyncio Task per await, the same <c>current_task()</c> and context,
/// and a cancellation of the task is thrown into the innermost await. Elsewhere (a continuation the
/// loop's queue runs, a thread-pool thread, a second await while one is in flight) it is
/// <see cref="PyAwaitable.ToTask{T}(PyObject, CancellationToken)"/>. Use the awaiter at once, as
/// <c>await</c> does.
/// </summary>
public struct PyAwaiter<T> : ICriticalNotifyCompletion
{
    private readonly PyObject _awaitable;
    private Driver? _driver;
    private TaskAwaiter<T> _fallback;
    private bool _usesFallback;

    internal PyAwaiter(PyObject awaitable)
    {
        ArgumentNullException.ThrowIfNull(awaitable);
        _awaitable = awaitable;
    }

    /// <summary>False while the awaitable still has to run; decides where it runs (the enclosing
    /// Python task, or a Task of its own).</summary>
    public bool IsCompleted
    {
        get
        {
            if (_driver != null) return false;
            if (!_usesFallback)
            {
                _driver = Driver.TryClaim(_awaitable);
                if (_driver != null) return false;
                _fallback = PyAwaitable.ToTask<T>(_awaitable).GetAwaiter();
                _usesFallback = true;
            }
            return _fallback.IsCompleted;
        }
    }

    /// <summary>Resumes <paramref name="continuation"/> when the awaitable is done, flowing the
    /// ExecutionContext.</summary>
    public void OnCompleted(Action continuation)
    {
        if (_driver is null && !_usesFallback) _ = IsCompleted;
        if (_driver != null)
        {
            var context = ExecutionContext.Capture();
            _driver.Await(_awaitable, context is null ? continuation : () => ExecutionContext.Run(context, static s => ((Action)s!)(), continuation));
        }
        else _fallback.OnCompleted(continuation);
    }

    /// <summary>Resumes <paramref name="continuation"/> when the awaitable is done (the async
    /// method builder restores its own ExecutionContext).</summary>
    public void UnsafeOnCompleted(Action continuation)
    {
        if (_driver is null && !_usesFallback) _ = IsCompleted;
        if (_driver != null) _driver.Await(_awaitable, continuation);
        else _fallback.UnsafeOnCompleted(continuation);
    }

    /// <summary>The result converted to <typeparamref name="T"/> (a <see cref="PyObject"/> is a new
    /// reference the caller owns), or the awaitable's exception (CancelledError as a
    /// <see cref="PythonCancelledException"/>).</summary>
    public T GetResult()
    {
        if (_driver != null) return _driver.TakeResult<T>();
        if (!_usesFallback) _ = IsCompleted;
        return _fallback.GetResult();
    }
}

/// <summary>What <c>await</c> takes: <see cref="PyAwaitable.Of{T}(PyObject)"/>.</summary>
public readonly struct PyAwaitableOf<T>(PyObject awaitable)
{
    /// <summary>The awaiter (<see cref="PyAwaiter{T}"/>).</summary>
    public PyAwaiter<T> GetAwaiter() => new(awaitable);
}

/// <summary>
/// Steps the Python coroutines that .NET code awaits directly, inside the Python task that runs the
/// .NET code: the Python side of that .NET work is an awaitable (NativeTypes.NewStepper) whose
/// steps send into the coroutine .NET awaits and yield what it yields to the enclosing task; when
/// the coroutine returns, the .NET continuation runs inline, within the same step. When the .NET
/// work waits for anything else, the step yields an asyncio future that completes with the work.
/// Loop thread, GIL, for every member.
/// </summary>
internal sealed unsafe class Driver : StepTarget
{
    // Steps nest on the native stack (each level of .NET → Python → .NET is one more): beyond this
    // depth an await takes its own Task instead, which does not nest.
    private const int MaxDepth = 64;
    [ThreadStatic] private static int t_depth;
    [ThreadStatic] private static Driver? t_spare;

    private static readonly PythonLazy s_drive = new(static () =>
    {
        using var globals = Py.Run("async def drive(awaitable):\n    return await awaitable\n", fileName: "<asyncioraw driver>");
        return globals["drive"];
    });

    private EventLoop _loop = null!;
    private Func<Task>? _start;
    private Task? _work;
    private delegate*<Task, NewReference> _resultOf;
    private CancellationTokenSource? _cts;
    private PyRef _inner;            // the iterator being stepped
    private bool _innerIsWork;       // _inner waits for _work itself
    private Action? _continuation;   // the .NET await waiting for _inner
    private PyRef _result;
    private Exception? _error;
    private bool _claimed, _running, _finished;
    // Asyncio.Run's main: its outcome is read from the .NET Task, so the asyncio Task only ends
    // (with None). Raising the main's exception there as well would let a SystemExit or
    // KeyboardInterrupt escape the loop a second time, out of the shutdown that follows.
    private bool _outcomeIsTheWorks;

    private Driver() { }

    /// <summary>A driver for the synchronous part of a .NET async function Python called: returns
    /// the thread's spare when it is free.</summary>
    internal static Driver Rent(EventLoop loop)
    {
        var d = t_spare ?? new Driver();
        t_spare = null;
        d._loop = loop;
        return d;
    }

    /// <summary>The .NET function awaited nothing directly: the driver goes back to be reused.</summary>
    internal void Return()
    {
        _loop = null!;
        t_spare = this;
    }

    /// <summary>True when .NET code handed this driver an await (it must be stepped).</summary>
    internal bool HasAwait => _claimed;

    /// <summary>The Python awaitable for <paramref name="work"/>, whose first step steps the await
    /// the work is waiting in.</summary>
    internal NewReference Attach(Task work, delegate*<Task, NewReference> resultOf, CancellationTokenSource? cts)
    {
        _work = work;
        _resultOf = resultOf;
        _cts = cts;
        return NativeTypes.NewStepper(this);
    }

    /// <summary>The asyncio Task (new reference) that runs <paramref name="start"/> in its first step,
    /// in <paramref name="context"/>, and then drives what it awaits.</summary>
    internal static NewReference StartTask(EventLoop loop, Func<Task> start, PyObject? context)
    {
        var d = new Driver { _loop = loop, _start = start, _resultOf = &PyFuture.NoResult, _outcomeIsTheWorks = true };
        using var stepper = NativeTypes.NewStepper(d);
        using var coroutine = PyBorrowed.Of(s_drive.Value).CallOne(stepper.Borrow());
        // The Task copies the current context when created (create_task's context= needs 3.11).
        bool entered = context != null && !TaskLocals.IsEntered(context) && PyContextApi.TryEnter(PyBorrowed.Of(context));
        try { return loop.LoopObject.CallMethod(PyNames.create_task, coroutine.Borrow()); }
        finally { if (entered) PyContextApi.Exit(PyBorrowed.Of(context!)); }
    }

    /// <summary>The driver that may step <paramref name="awaitable"/> now, claimed for it; or null.</summary>
    internal static Driver? TryClaim(PyObject awaitable)
    {
        if (Callbacks.DirectAwaitTarget is not Driver d || d._claimed || d._finished || !d._inner.IsNull || t_depth >= MaxDepth) return null;
        if (!d._loop.IsOnLoopThread || awaitable.IsDisposed) return null;
        var a = PyBorrowed.Of(awaitable);
        if (!a.HasExactType(PyNames.CoroutineType) && !a.HasExactType(PyNames.FutureType)) return null;
        d._claimed = true;
        return d;
    }

    /// <summary>The claimed await begins: the step running now steps it when the .NET code returns to it.</summary>
    internal void Await(PyObject awaitable, Action continuation)
    {
        _continuation = continuation;
        try
        {
            var a = PyBorrowed.Of(awaitable);
            var iterator = a.HasExactType(PyNames.CoroutineType) ? NewReference.To(a) : a.CallMethod(PyNames.await_);
            _inner.Set(ref iterator);
        }
        catch (Exception e)
        {
            _error = e; // resumed with it at once by the step
        }
    }

    internal T TakeResult<T>()
    {
        if (_error is { } e)
        {
            _error = null;
            ExceptionDispatchInfo.Throw(e);
        }
        var result = _result.Take();
        if (result.IsNull) throw new InvalidOperationException("The awaitable has not completed: use 'await', not the awaiter by hand.");
        if (typeof(T) == typeof(PyObject)) return (T)(object)result.MoveToObject();
        try { return result.Borrow().As<T>(); }
        finally { result.Dispose(); }
    }

    internal override int Step(PyBorrowed sent, PyBorrowed thrown, out NewReference value)
    {
        value = default;
        if (_running) throw new InvalidOperationException("this .NET awaitable is already being stepped");
        if (_finished) throw new InvalidOperationException("this .NET awaitable was already awaited to the end");
        if (!_loop.IsOnLoopThread) throw new InvalidOperationException("a .NET awaitable can only be stepped on its event loop's thread");
        _running = true;
        t_depth++;
        try
        {
            if (_start is { } start)
            {
                _start = null;
                RunDotNet(static s => s.Driver._work = s.Start(), (Driver: this, Start: start));
            }
            while (true)
            {
                if (!_inner.IsNull)
                {
                    int status = thrown.IsNull ? SendInner(sent, out var r) : ThrowInner(thrown, out r);
                    sent = PyBorrowed.None;
                    thrown = default;
                    if (status == Yielded)
                    {
                        value = r;
                        return Yielded;
                    }
                    _inner.Release();
                    if (_innerIsWork)
                    {
                        _innerIsWork = false;
                        r.Dispose();
                        if (status == Raised)
                        {
                            // Cancelled (or failed) while the .NET work was still running: that is the outcome.
                            if (!_work!.IsCompleted) return Finish(cancelWork: true);
                            CPython.PyErr_Clear(); // the work's own outcome, below
                        }
                        continue;
                    }
                    if (status == Returned) _result.Set(ref r);
                    else _error = FetchForAwait();
                    Resume();
                    continue;
                }
                if (_continuation != null)
                {
                    Resume(); // the await could not start: its error goes to the .NET code
                    continue;
                }
                if (!thrown.IsNull)
                {
                    PythonException.RestoreRaw(NewReference.To(thrown).Steal());
                    return Finish(cancelWork: true);
                }
                if (_work!.IsCompleted)
                {
                    _finished = true;
                    return Outcome(out value);
                }
                // The .NET work waits for something else: wait for the work itself.
                var future = PyFuture.FromTask(_work, &PyFuture.NoResult, _loop, null);
                using (future)
                {
                    var iterator = future.Borrow().CallMethod(PyNames.await_);
                    _inner.Set(ref iterator);
                }
                _innerIsWork = true;
            }
        }
        finally
        {
            t_depth--;
            _running = false;
        }
    }

    private int Finish(bool cancelWork)
    {
        _finished = true;
        if (cancelWork) CancelWork();
        return Raised;
    }

    private void CancelWork()
    {
        try { _cts?.Cancel(); }
        catch (AggregateException e) { _loop.ReportUnhandled(e, "a cancellation callback of .NET work threw"); }
    }

    private int Outcome(out NewReference value)
    {
        var work = _work!;
        if (work.IsCompletedSuccessfully || _outcomeIsTheWorks)
        {
            value = _resultOf(work);
            return Returned;
        }
        value = default;
        var error = AsyncErrors.Of(work);
        if (error is OperationCanceledException && _cts is { IsCancellationRequested: true })
        {
            CPython.PyErr_SetObject(PyNames.CancelledError.Handle, null);
            return Raised;
        }
        ExceptionBridge.Raise(error);
        return Raised;
    }

    private static Exception FetchForAwait()
    {
        try { return AsyncErrors.Fetch(); }
        catch (Exception e) { return e; } // a .NET exception that went through Python comes back as itself
    }

    /// <summary>Resumes the .NET await, inline: an await it makes now is ours again.</summary>
    private void Resume()
    {
        var k = _continuation!;
        _continuation = null;
        _claimed = false;
        RunDotNet(static k => k(), k);
    }

    private void RunDotNet<TState>(Action<TState> action, TState state)
    {
        var previous = Callbacks.DirectAwaitTarget;
        Callbacks.DirectAwaitTarget = this;
        try { action(state); }
        catch (Exception e) { _loop.ReportUnhandled(e, "unhandled exception in .NET code resumed by a Python await"); }
        finally { Callbacks.DirectAwaitTarget = previous; }
    }

    private int SendInner(PyBorrowed sent, out NewReference result)
    {
        var inner = _inner.Borrow();
        if (PythonLibrary.Minor >= 10)
        {
            NativePyObject* r;
            int status = CPython.PyIter_Send(inner.Pointer, sent.Pointer, &r);
            result = new NewReference(r);
            return status == CPython.PYGEN_NEXT ? Yielded : status == CPython.PYGEN_RETURN ? Returned : Raised;
        }
        return FromCall(CallRaw(inner, PyNames.send, sent), out result);
    }

    private int ThrowInner(PyBorrowed thrown, out NewReference result) =>
        FromCall(CallRaw(_inner.Borrow(), PyNames.throw_, thrown), out result);

    private static NativePyObject* CallRaw(PyBorrowed target, PyObject name, PyBorrowed arg)
    {
        var args = stackalloc NativePyObject*[2];
        args[0] = target.Pointer;
        args[1] = arg.Pointer;
        return CPython.PyObject_VectorcallMethod(name.Handle, args, 2 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), null);
    }

    /// <summary>send()/throw() called as methods: a yielded value, or StopIteration's value.</summary>
    private static int FromCall(NativePyObject* r, out NewReference result)
    {
        result = new NewReference(r);
        if (r != null) return Yielded;
        if (CPython.PyErr_ExceptionMatches(CPython.PyExc_StopIteration) == 0) return Raised;
        var stop = PythonException.FetchRaw();
        var value = CPython.PyObject_GetAttr(stop, PyNames.value.Handle);
        CPython.Py_DecRef(stop);
        result = new NewReference(value);
        return value != null ? Returned : Raised;
    }

    internal override void Close()
    {
        if (_finished || _running) return;
        _finished = true;
        CancelWork();
        if (_inner.IsNull) return;
        bool dotnetWaits = !_innerIsWork;
        _innerIsWork = false;
        try
        {
            if (!_inner.Borrow().TryCallMethod(PyNames.close)) _error = FetchForAwait();
        }
        finally
        {
            _inner.Release();
        }
        if (dotnetWaits && _continuation != null)
        {
            _error ??= new OperationCanceledException("The Python awaitable running this .NET await was closed.");
            var k = _continuation;
            _continuation = null;
            _claimed = false;
            // Not ours any more: what the .NET code awaits next runs in its own Task.
            try { k(); }
            catch (Exception e) { _loop.ReportUnhandled(e, "unhandled exception in .NET code resumed by a closed Python await"); }
        }
    }

    internal override void Dropped()
    {
        if (_finished || (_inner.IsNull && _continuation is null && _work is null)) return;
        if (_inner.IsNull && _continuation is null)
        {
            if (_work is { IsCompleted: false }) CancelWork(); // like a future collected unawaited
            return;
        }
        // Inside a dealloc: close the awaited coroutine and resume the .NET code from the loop's queue.
        _loop.PostLoopWork(static s => ((Driver)s!).Close(), static (s, e) => ((Driver)s!).Abandon(e), this);
    }

    /// <summary>The loop closed first. Any thread, maybe without the GIL.</summary>
    private void Abandon(Exception reason)
    {
        _finished = true;
        _inner.ReleaseDeferred();
        _cts?.Cancel();
        if (_continuation is { } k)
        {
            _continuation = null;
            _error = reason;
            k();
        }
    }
}
