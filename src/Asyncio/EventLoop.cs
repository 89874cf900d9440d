using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw.Asyncio;

/// <summary>
/// A Python event loop as .NET sees it: the loop object, the thread it runs on, and a queue that
/// any thread can post work to. Posting is lock-free and takes no GIL: the first post since the
/// last drain wakes the loop once (an eventfd the loop watches with add_reader, or call_soon when
/// already on the loop thread), and one drain runs the whole batch.
/// </summary>
public sealed unsafe class EventLoop
{
    private static readonly ConcurrentDictionary<nint, EventLoop> s_loops = new();
    [ThreadStatic] private static EventLoop? t_lastAdopted;

    private readonly ConcurrentQueue<WorkItem> _queue = new();
    private readonly HashSet<IPendingOperation> _pending = [];
    private readonly PyObject _drain;
    private int _wakePending;
    private int _eventFd = -1;
    private volatile bool _closed;

    private readonly record struct WorkItem(Action<object?> Callback, object? State);

    // Loops we run are held strongly; loops we adopted (someone else runs them) weakly, so that
    // our wrapper never keeps them alive. The raw pointer is valid while the loop runs.
    private readonly PyObject? _owned;
    private readonly nint _loopHandle;
    private PyObject? _loopWeakref;

    /// <summary>A new reference to the Python loop object (dispose it).</summary>
    public PyObject Loop
    {
        get
        {
            using var gil = Gil.Acquire();
            return PyObject.FromBorrowedHandle(_loopHandle);
        }
    }

    /// <summary>The loop object (borrowed). Requires the GIL.</summary>
    internal Interop.PyObject* LoopHandle => (Interop.PyObject*)_loopHandle;

    /// <summary>The managed thread the loop runs on.</summary>
    public int ThreadId { get; }

    /// <summary>True once the loop was closed through us; later work is dropped quietly.</summary>
    public bool IsClosed => _closed;

    internal LoopSynchronizationContext SyncContext { get; }

    // Coroutines awaited from .NET report their outcome through one function per loop, with an
    // integer key, instead of a function object and a GCHandle per await. Loop thread only.
    private readonly Dictionary<long, IReportTarget> _reportTargets = [];
    private long _nextReportKey;
    private PyObject? _reporter;

    /// <summary>The loop's report function (borrowed). Loop thread, GIL.</summary>
    internal Interop.PyObject* Reporter => (_reporter ??= PyObject.StealOrThrow(Callbacks.FastCall(new ReportDispatch(this)))).Handle;

    internal long AddReportTarget(IReportTarget target)
    {
        long key = ++_nextReportKey;
        _reportTargets.Add(key, target);
        return key;
    }

    private sealed class ReportDispatch(EventLoop loop) : FastCallTarget
    {
        internal override Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames)
        {
            long key = PyConvert.AsLong(args[0]);
            if (loop._reportTargets.Remove(key, out var target))
                target.OnReport(args[1] == CPython.Py_True, args[2]);
            CPython.Py_IncRef(CPython.Py_None);
            return CPython.Py_None;
        }
    }
    internal LoopTaskScheduler Scheduler { get; }

    private EventLoop(PyObject? owned, nint loopHandle, int threadId)
    {
        _owned = owned;
        _loopHandle = loopHandle;
        ThreadId = threadId;
        SyncContext = new LoopSynchronizationContext(this);
        Scheduler = new LoopTaskScheduler(this);
        _drain = PyObject.StealOrThrow(Callbacks.NoArgs(new DrainCallback(this)));
    }

    public bool IsOnLoopThread => Environment.CurrentManagedThreadId == ThreadId;

    /// <summary>Wraps a loop that this library runs (Asyncio.Run, EventLoopThread). Call on the loop's
    /// thread, with the GIL.</summary>
    internal static EventLoop Own(PyObject loop)
    {
        PyNames.EnsureReady();
        var result = new EventLoop(loop.NewReference(), loop.DangerousGetHandle(), Environment.CurrentManagedThreadId);
        result.WatchEventFd();
        s_loops[loop.DangerousGetHandle()] = result;
        return result;
    }

    /// <summary>
    /// The EventLoop for the loop running on this thread (Python called into .NET), creating one
    /// the first time we see a loop we do not run ourselves. Requires the GIL.
    /// </summary>
    internal static EventLoop? Running()
    {
        PyNames.EnsureReady();
        var loopObj = CPython.PyObject_CallNoArgs(PyNames.GetRunningLoop.Handle);
        if (loopObj == null) throw PythonException.Fetch();
        if (loopObj == CPython.Py_None)
        {
            CPython.Py_DecRef(loopObj);
            return null;
        }
        var last = t_lastAdopted;
        if (last != null && last._loopHandle == (nint)loopObj && !last._closed)
        {
            CPython.Py_DecRef(loopObj);
            return last;
        }
        if (s_loops.TryGetValue((nint)loopObj, out var known) && !known._closed)
        {
            CPython.Py_DecRef(loopObj);
            return t_lastAdopted = known;
        }
        // A loop someone else runs (plain asyncio.run in Python code). Forget it when it is collected.
        var adopted = new EventLoop(null, (nint)loopObj, Environment.CurrentManagedThreadId);
        adopted.WatchEventFd();
        var onCollected = Callbacks.OneArg(new LoopCollected((nint)loopObj));
        var weak = CPython.PyWeakref_NewRef(loopObj, onCollected);
        CPython.Py_DecRef(onCollected);
        CPython.Py_DecRef(loopObj);
        if (weak == null) CPython.PyErr_Clear();
        else adopted._loopWeakref = PyObject.Steal(weak);
        s_loops[(nint)loopObj] = adopted;
        return t_lastAdopted = adopted;
    }

    private sealed class LoopCollected(nint key) : OneArgCallback
    {
        internal override void Invoke(Interop.PyObject* weakref)
        {
            // The loop object is gone: only our own side remains to be closed.
            if (s_loops.TryRemove(key, out var loop)) loop.CloseCore(loopAlive: false);
        }
    }

    private void WatchEventFd()
    {
        int fd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        if (fd < 0) return; // fall back to call_soon_threadsafe
        using var fdObj = PyConvert.ToPython(fd);
        var r = PyNames.CallMethod2(LoopHandle, PyNames.add_reader, fdObj.Handle, _drain.Handle);
        if (r == null)
        {
            // Loops without add_reader (e.g. a proactor) are woken with call_soon_threadsafe.
            CPython.PyErr_Clear();
            LibC.close(fd);
            return;
        }
        CPython.Py_DecRef(r);
        _eventFd = fd;
    }

    /// <summary>Runs <paramref name="callback"/> on the loop thread, inside the loop, with the GIL.
    /// Thread-safe. After the loop is closed the work is dropped.</summary>
    public void Post(Action<object?> callback, object? state = null)
    {
        if (_closed) return;
        _queue.Enqueue(new WorkItem(callback, state));
        if (Interlocked.Exchange(ref _wakePending, 1) == 0) Wake();
    }

    private void Wake()
    {
        if (IsOnLoopThread && Gil.HeldByUs)
        {
            var r = PyNames.CallMethod1(LoopHandle, PyNames.call_soon, _drain.Handle);
            if (r != null) { CPython.Py_DecRef(r); return; }
            CPython.PyErr_Clear(); // closed underneath us: the fd or threadsafe path will report it
        }
        if (_eventFd >= 0)
        {
            ulong one = 1;
            if (LibC.write(_eventFd, &one, sizeof(ulong)) == sizeof(ulong)) return;
        }
        WakeThreadsafe();
    }

    private void WakeThreadsafe()
    {
        try
        {
            using var gil = Gil.Acquire();
            if (_closed) return;
            var r = PyNames.CallMethod1(LoopHandle, PyNames.call_soon_threadsafe, _drain.Handle);
            if (r == null) CPython.PyErr_Clear(); // the loop is closed: the work is dropped
            else CPython.Py_DecRef(r);
        }
        catch (InvalidOperationException)
        {
            // Python is finalizing: nothing can run any more.
        }
    }

    private sealed class DrainCallback(EventLoop loop) : NoArgsCallback
    {
        internal override void Invoke() => loop.Drain();
    }

    /// <summary>Runs the batch that was queued. On the loop thread, from a loop callback, with the GIL.</summary>
    private void Drain()
    {
        if (_eventFd >= 0)
        {
            ulong value;
            LibC.read(_eventFd, &value, sizeof(ulong)); // EAGAIN when woken through call_soon: fine
        }
        Interlocked.Exchange(ref _wakePending, 0);
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(SyncContext);
        bool followed = TaskLocals.t_followExecutionContext;
        TaskLocals.t_followExecutionContext = true;
        try
        {
            // Only what is queued now: work posted while draining waits for the next iteration,
            // so other ready callbacks of the loop get their turn.
            for (int budget = _queue.Count; budget > 0 && _queue.TryDequeue(out var item); budget--)
                Run(item);
        }
        finally
        {
            TaskLocals.t_followExecutionContext = followed;
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    private void Run(in WorkItem item)
    {
        try
        {
            item.Callback(item.State);
        }
        catch (Exception e)
        {
            ReportUnhandled(e, "unhandled exception in .NET code running on the event loop");
        }
    }

    /// <summary>Reports through loop.call_exception_handler, as asyncio does for its callbacks.
    /// On the loop thread with the GIL.</summary>
    internal void ReportUnhandled(Exception e, string message)
    {
        try
        {
            using var context = PyConvert.ToPython(new Dictionary<string, object?>
            {
                ["message"] = message,
                ["exception"] = ExceptionBridge.ToPython(e),
            });
            var r = PyNames.CallMethod1(LoopHandle, PyNames.call_exception_handler, context.Handle);
            if (r == null) CPython.PyErr_WriteUnraisable(LoopHandle);
            else CPython.Py_DecRef(r);
        }
        catch (Exception reportFailure)
        {
            CallbackFailure.Report(message, new AggregateException(e, reportFailure));
        }
    }

    // ---- Operations that must end when the loop closes ----

    internal void Track(IPendingOperation op)
    {
        lock (_pending) _pending.Add(op);
    }

    internal void Untrack(IPendingOperation op)
    {
        lock (_pending) _pending.Remove(op);
    }

    /// <summary>Closes our side: stops watching the eventfd, cancels .NET operations still
    /// waiting on this loop, drops queued completions. On the loop thread, with the GIL, before
    /// loop.close().</summary>
    internal void Close() => CloseCore(loopAlive: true);

    private void CloseCore(bool loopAlive)
    {
        if (_closed) return;
        _closed = true;
        s_loops.TryRemove(new KeyValuePair<nint, EventLoop>(_loopHandle, this));
        if (t_lastAdopted == this) t_lastAdopted = null;
        if (_eventFd >= 0)
        {
            if (loopAlive)
            {
                using var fdObj = PyConvert.ToPython(_eventFd);
                var r = PyNames.CallMethod1(LoopHandle, PyNames.remove_reader, fdObj.Handle);
                if (r == null) CPython.PyErr_Clear();
                else CPython.Py_DecRef(r);
            }
            LibC.close(_eventFd);
            _eventFd = -1;
        }
        IPendingOperation[] pending;
        lock (_pending)
        {
            pending = [.. _pending];
            _pending.Clear();
        }
        foreach (var op in pending) op.OnLoopClosed();
        foreach (var target in _reportTargets.Values) (target as IPendingOperation)?.OnLoopClosed();
        _reportTargets.Clear();
        _reporter?.Dispose();
        // .NET continuations still queued must not be lost: they resume on the thread pool.
        // (Completions meant for Python futures see IsClosed there and do nothing.)
        while (_queue.TryDequeue(out var item))
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Callback(s.State), item, preferLocal: false);
        _drain.Dispose();
        _loopWeakref?.Dispose();
        _owned?.Dispose();
    }
}

/// <summary>Receives the outcome of a coroutine run by run_and_report.</summary>
internal unsafe interface IReportTarget
{
    /// <param name="ok">True for a result, false for an exception.</param>
    /// <param name="value">Borrowed: the result, or the exception.</param>
    void OnReport(bool ok, Interop.PyObject* value);
}

/// <summary>Work that waits on a loop and must be ended (cancelled) when the loop closes.</summary>
internal interface IPendingOperation
{
    void OnLoopClosed();
}
