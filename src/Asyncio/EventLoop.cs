using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;

namespace AsyncioRaw;

/// <summary>
/// A Python event loop as .NET sees it: the loop object, the thread it runs on, and a queue that
/// any thread can post work to. Posting is lock-free and takes no GIL: the first post since the
/// last drain wakes the loop once (an eventfd the loop watches with add_reader, or call_soon when
/// already on the loop thread), and one drain runs the whole batch.
/// </summary>
/// <remarks>
/// Affinity and lifecycle live here, in one place. Work posted to the loop is of two kinds: loop
/// work, which touches Python objects and must run on the loop thread with the GIL, and .NET
/// continuations, which only need to run somewhere. Once the loop is closed (by us, or, for a loop
/// someone else runs, when it is collected), loop work is abandoned — its .NET side fails with
/// <see cref="LoopClosedException"/> — and never runs elsewhere; continuations resume on the
/// thread pool. Every entry point that touches the loop object checks the state first, under the
/// GIL, so a wrapper that outlives its loop throws instead of reading a freed pointer.
/// </remarks>
public sealed class EventLoop
{
    private static readonly ConcurrentDictionary<nint, EventLoop> s_loops = new();
    [ThreadStatic] private static EventLoop? t_lastAdopted;
    private static int s_lastId;

    static EventLoop() => AsyncioRawDiagnostics.LoopQueueLengths = static () =>
        s_loops.Values.Select(static l => new Measurement<long>(l._queue.Count, l._idTag));

    // The loop this library is running on this thread right now (inside its run_until_complete or
    // run_forever): while it runs, no other loop can run here, so it is the running loop.
    [ThreadStatic] private static EventLoop? t_driving;

    private readonly ConcurrentQueue<WorkItem> _queue = new();
    private readonly HashSet<IPendingOperation> _pending = [];
    private readonly PyObject _drain;
    private int _wakePending;
    private int _eventFd = -1;
    private int _closed;    // 0 open, 1 closed; Interlocked (see Post and CloseCore)
    private string _closedReason = "closed";
    // Set when the loop starts shutting down (asyncio's shutdown steps still run it): from then on
    // other threads can no longer start work on it, which would only keep the shutdown busy.
    private volatile string? _closingReason;

    // Abandon is null for .NET continuations (they resume on the thread pool once the loop is
    // gone) and set for loop work, which is failed instead: it must never run without the loop.
    // PostedAt: a Stopwatch timestamp when a listener measures queue waits, else 0.
    private readonly record struct WorkItem(Action<object?> Callback, object? State, Action<object?, Exception>? Abandon, long PostedAt);

    // Metric tags, built once per loop (boxing the id per post would allocate on the hot path).
    private readonly KeyValuePair<string, object?> _idTag;
    private static readonly KeyValuePair<string, object?> s_loopWorkTag = new(AsyncioRawDiagnostics.WorkKindTag, "loop_work");
    private static readonly KeyValuePair<string, object?> s_continuationTag = new(AsyncioRawDiagnostics.WorkKindTag, "continuation");

    // Loops we run are held strongly; loops we adopted (someone else runs them) weakly, so that
    // our wrapper never keeps them alive. The raw pointer is valid while the loop runs.
    private readonly PyObject? _owned;
    private readonly nint _loopHandle;
    private PyObject? _loopWeakref;
    private PyObject? _selectorWeakref;

    /// <summary>A new reference to the Python loop object (dispose it).</summary>
    /// <exception cref="LoopClosedException">The loop was closed (or collected).</exception>
    public PyObject Loop
    {
        get
        {
            using var gil = Gil.Acquire();
            return OpenLoopObject.ToOwned();
        }
    }

    /// <summary>The loop object (borrowed). Only for code that runs on the loop thread inside the
    /// loop (a drain, a callback, a step of one of its tasks), where the loop is alive by
    /// construction; everything else uses <see cref="OpenLoopObject"/>. Requires the GIL.</summary>
    internal PyBorrowed LoopObject => PyBorrowed.DangerousFromHandle(_loopHandle);

    /// <summary>The loop object (borrowed) after checking, under the GIL, that it is still open:
    /// the weakref callback that closes an adopted loop runs with the GIL too, so the object cannot
    /// be freed between this check and the caller's use (as long as it runs no Python code first).</summary>
    internal PyBorrowed OpenLoopObject
    {
        get
        {
            ThrowIfClosed();
            return PyBorrowed.DangerousFromHandle(_loopHandle);
        }
    }

    /// <summary>Throws <see cref="LoopClosedException"/> when the loop is closed, or shutting down and
    /// this is not its thread (code the shutdown itself runs, on the loop thread, may go on).</summary>
    internal void ThrowIfClosed()
    {
        if (Volatile.Read(ref _closed) != 0 || (_closingReason != null && !IsOnLoopThread)) throw Closed();
    }

    /// <summary>True when work from another thread must no longer start (closing or closed).</summary>
    internal bool RefusesNewWork => _closingReason != null || Volatile.Read(ref _closed) != 0;

    internal LoopClosedException Closed() => new(
        $"The Python event loop on managed thread {ThreadId} is {(IsClosed ? _closedReason : _closingReason)}: work that needs it can no longer run.");

    /// <summary>The loop is about to shut down: refuse new work from other threads from now on.</summary>
    internal void BeginClosing(string reason) => _closingReason ??= reason;

    /// <summary>The managed thread the loop runs on.</summary>
    public int ThreadId { get; }

    /// <summary>A number unique to this loop in the process (loops are numbered as .NET first sees
    /// them): the value of the <see cref="AsyncioRawDiagnostics.LoopIdTag"/> tag on its metrics.</summary>
    public int Id { get; }

    /// <summary>True once the loop is closed (or, for a loop someone else runs, collected): work
    /// that needs it fails with <see cref="LoopClosedException"/>.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    internal LoopSynchronizationContext SyncContext { get; }

    // Coroutines awaited from .NET report their outcome through one function per loop, with an
    // integer key, instead of a function object and a GCHandle per await. Loop thread only.
    private readonly Dictionary<long, IReportTarget> _reportTargets = [];
    private long _nextReportKey;
    private PyObject? _reporter;

    /// <summary>The loop's report function (borrowed). Loop thread, GIL.</summary>
    internal PyObject Reporter => _reporter ??= Callbacks.FastCall(new ReportDispatch(this)).MoveToObject();

    internal long AddReportTarget(IReportTarget target)
    {
        long key = ++_nextReportKey;
        _reportTargets.Add(key, target);
        return key;
    }

    /// <summary>report(key, ok, value). Python code can reach it (a coroutine frame's locals), so it
    /// checks everything it is given before anything trusts it.</summary>
    private sealed class ReportDispatch(EventLoop loop) : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args)
        {
            args.ExpectPositional(3, "report(key, ok, value)");
            if (!loop.IsOnLoopThread)
                throw new InvalidOperationException("report() must be called on its event loop's thread");
            if (!args[0].IsInt)
                throw new InvalidCastException("report(): key must be an int");
            if (!args[1].Is(PyBorrowed.True) && !args[1].Is(PyBorrowed.False))
                throw new InvalidCastException("report(): ok must be a bool");
            bool ok = args[1].Is(PyBorrowed.True);
            if (!ok && !args[2].IsExceptionInstance)
                throw new InvalidCastException("report(): a failure must carry an exception instance");
            if (!args[0].TryAsInt64(out long key) || !loop._reportTargets.Remove(key, out var target))
                throw new KeyNotFoundException("report(): no await is waiting for this key");
            target.OnReport(ok, args[2]);
            return NewReference.None();
        }
    }

    internal LoopTaskScheduler Scheduler { get; }

    private EventLoop(PyObject? owned, nint loopHandle, int threadId)
    {
        _owned = owned;
        _loopHandle = loopHandle;
        ThreadId = threadId;
        Id = Interlocked.Increment(ref s_lastId);
        _idTag = new(AsyncioRawDiagnostics.LoopIdTag, Id);
        SyncContext = new LoopSynchronizationContext(this);
        Scheduler = new LoopTaskScheduler(this);
        _drain = Callbacks.NoArgs(new DrainCallback(this)).MoveToObject();
    }

    /// <summary>True when the calling thread is the one this loop runs on (where loop-only work may
    /// run inline).</summary>
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
    internal static unsafe EventLoop? Running()
    {
        // asyncio._get_running_loop costs a getpid() system call per call on 3.9-3.11: while our own
        // loop runs on this thread, it is the answer (a forked child runs no loop of ours).
        if (t_driving is { } driving && !driving.IsClosed && *Gil.ForkedChildFlag == 0) return driving;
        PyNames.EnsureReady();
        using var loopObj = PyBorrowed.Of(PyNames.GetRunningLoop).Call();
        var running = loopObj.Borrow();
        if (running.IsNoneObject) return null;
        nint key = running.DangerousGetHandle(); // identity only: never dereferenced through the key
        var last = t_lastAdopted;
        if (last != null && last._loopHandle == key && !last.IsClosed) return last;
        if (s_loops.TryGetValue(key, out var known) && !known.IsClosed) return t_lastAdopted = known;
        // A loop someone else runs (plain asyncio.run in Python code): we cannot close it with
        // it, so we watch for its end. A loop type without weakref support cannot be adopted
        // safely: that throws here.
        var adopted = new EventLoop(null, key, Environment.CurrentManagedThreadId);
        try
        {
            adopted.WatchEventFd();
            adopted._loopWeakref = Watch(adopted, running, "gone (closed and collected)");
            adopted._selectorWeakref = WatchSelector(adopted, running);
        }
        catch
        {
            adopted.CloseCore(loopAlive: true, "not usable from .NET");
            throw;
        }
        s_loops[key] = adopted;
        return t_lastAdopted = adopted;
    }

    /// <summary>Calls <paramref name="method"/> (run_until_complete or run_forever) on the loop
    /// object with <see cref="Running"/> answering this loop without asking Python meanwhile. On
    /// the loop's thread with the GIL.</summary>
    internal void RunLoop(string method, PyObject? argument = null)
    {
        var previous = t_driving;
        t_driving = this;
        try
        {
            var loopObj = OpenLoopObject.ToOwned();
            using (loopObj)
            using (argument is null ? loopObj.CallMethod(method) : loopObj.CallMethod(method, argument)) { }
        }
        finally
        {
            t_driving = previous;
        }
    }

    /// <summary>A weak reference to <paramref name="target"/> whose death closes our side of
    /// <paramref name="loop"/> (the loop object is then gone, or closed: it is not touched again).</summary>
    private static PyObject Watch(EventLoop loop, PyBorrowed target, string reason)
    {
        var onDeath = new LoopEnded(loop, reason);
        using var callback = Callbacks.OneArg(onDeath);
        var weak = PyWeakRefApi.New(target, callback.Borrow()).MoveToObject();
        onDeath.Weakref = weak.DangerousGetHandle();
        return weak;
    }

    /// <summary>asyncio's selector loops drop their selector in close(), and loops sit in reference
    /// cycles, so the selector dies long before the loop is collected: watching it tells us the loop
    /// closed while work posted to it would otherwise wait for a drain that never comes. Loops
    /// without one (uvloop) are known closed when they are collected.</summary>
    private static PyObject? WatchSelector(EventLoop loop, PyBorrowed running)
    {
        using var loopObj = running.ToOwned();
        try
        {
            if (!loopObj.HasAttr("_selector")) return null;
            using var selector = loopObj.GetAttr("_selector");
            return selector.IsNone ? null : Watch(loop, PyBorrowed.Of(selector), "closed (by the Python code that ran it)");
        }
        catch (PythonException)
        {
            return null; // not weakly referenceable: the loop's own weak reference still ends us
        }
    }

    private sealed class LoopEnded(EventLoop loop, string reason) : OneArgCallback
    {
        internal nint Weakref;

        internal override void Invoke(PyBorrowed weakref)
        {
            // Python code can call this too: only the weakref's own callback closes the wrapper.
            if (weakref.DangerousGetHandle() != Weakref)
                throw new InvalidCastException("this callback belongs to a weak reference that watches an event loop");
            loop.CloseCore(loopAlive: false, reason);
        }
    }

    private void WatchEventFd()
    {
        int fd = EventFd.Create();
        if (fd < 0) return; // fall back to call_soon_threadsafe
        using var fdObj = PyConvert.ToPython(fd);
        try
        {
            using var r = LoopObject.CallMethod(PyNames.add_reader, PyBorrowed.Of(fdObj), PyBorrowed.Of(_drain));
        }
        catch (PythonException)
        {
            // Loops without add_reader (e.g. a proactor) are woken with call_soon_threadsafe.
            EventFd.Close(fd);
            return;
        }
        _eventFd = fd;
    }

    /// <summary>Runs loop work: <paramref name="callback"/> on the loop thread, inside the loop,
    /// with the GIL. If the loop is closed, or closes before the work runs, <paramref name="abandon"/>
    /// runs instead (on whichever thread notices, without the GIL held for it): it must fail the
    /// .NET side and release what the work owned, and must not call into Python. Thread-safe.</summary>
    internal void PostLoopWork(Action<object?> callback, Action<object?, Exception> abandon, object? state) =>
        Enqueue(new WorkItem(callback, state, abandon, Posted(s_loopWorkTag)));

    /// <summary>Runs a .NET continuation on the loop thread; once the loop is closed it runs on the
    /// thread pool instead (it is .NET code: resuming elsewhere beats never resuming). Thread-safe.</summary>
    internal void PostContinuation(Action<object?> callback, object? state) =>
        Enqueue(new WorkItem(callback, state, null, Posted(s_continuationTag)));

    /// <summary>Counts a post and returns its timestamp, each only while a listener has enabled the
    /// instrument: otherwise two field reads.</summary>
    private long Posted(in KeyValuePair<string, object?> kind)
    {
        if (AsyncioRawDiagnostics.LoopWorkPosted.Enabled) AsyncioRawDiagnostics.LoopWorkPosted.Add(1, _idTag, kind);
        return AsyncioRawDiagnostics.LoopQueueWait.Enabled ? Stopwatch.GetTimestamp() : 0;
    }

    private void Enqueue(in WorkItem item)
    {
        if (IsClosed)
        {
            Abandon(item);
            return;
        }
        _queue.Enqueue(item);
        // CloseCore sets _closed and then empties the queue; we enqueue and then read _closed (both
        // full fences): either it sees our item, or we see it closed and empty the queue ourselves.
        if (Volatile.Read(ref _closed) != 0)
        {
            AbandonQueued();
            return;
        }
        if (Interlocked.Exchange(ref _wakePending, 1) == 0) Wake();
    }

    private void AbandonQueued()
    {
        while (_queue.TryDequeue(out var item)) Abandon(item);
    }

    private void Abandon(in WorkItem item)
    {
        if (item.Abandon is null)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Callback(s.State), item, preferLocal: false);
            return;
        }
        try { item.Abandon(item.State, Closed()); }
        catch (Exception e) { CallbackFailure.Report("failing work given to a closed event loop", e); }
    }

    private void Wake()
    {
        if (IsOnLoopThread && Gil.HeldByUs)
        {
            if (LoopObject.TryCallMethod(PyNames.call_soon, PyBorrowed.Of(_drain))) return;
            // closed underneath us: the fd or threadsafe path will report it
        }
        if (_eventFd >= 0)
        {
            if (EventFd.Signal(_eventFd)) return;
        }
        WakeThreadsafe();
    }

    private void WakeThreadsafe()
    {
        try
        {
            using var gil = Gil.Acquire();
            if (IsClosed) return;
            if (LoopObject.TryCallMethod(PyNames.call_soon_threadsafe, PyBorrowed.Of(_drain))) return;
            // the loop is closed: nothing will drain the queue
        }
        catch (InvalidOperationException)
        {
            // Python is finalizing: nothing can run any more.
        }
        AbandonQueued();
    }

    private sealed class DrainCallback(EventLoop loop) : NoArgsCallback
    {
        internal override void Invoke()
        {
            // Python code can call the drain too; loop work must never run off the loop thread.
            if (!loop.IsOnLoopThread)
                throw new InvalidOperationException("the .NET work queue of an event loop can only be drained on that loop's thread");
            loop.Drain();
        }
    }

    /// <summary>Runs the batch that was queued. On the loop thread, from a loop callback, with the GIL.</summary>
    private void Drain()
    {
        if (_eventFd >= 0)
        {
            EventFd.Reset(_eventFd); // nothing pending when woken through call_soon: fine
        }
        Interlocked.Exchange(ref _wakePending, 0);
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(SyncContext);
        bool followed = Callbacks.FollowExecutionContext;
        Callbacks.FollowExecutionContext = true;
        try
        {
            // Only what is queued now: work posted while draining waits for the next iteration,
            // so other ready callbacks of the loop get their turn.
            for (int budget = _queue.Count; budget > 0 && _queue.TryDequeue(out var item); budget--)
                Run(item);
        }
        finally
        {
            Callbacks.FollowExecutionContext = followed;
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    private void Run(in WorkItem item)
    {
        if (item.PostedAt != 0)
        {
            AsyncioRawDiagnostics.LoopQueueWait.Record(AsyncioRawDiagnostics.Seconds(item.PostedAt, Stopwatch.GetTimestamp()),
                _idTag, item.Abandon is null ? s_continuationTag : s_loopWorkTag);
        }
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
            try
            {
                using var r = LoopObject.CallMethod(PyNames.call_exception_handler, PyBorrowed.Of(context));
            }
            catch (Exception handlerFailure)
            {
                PyErrorState.WriteUnraisable(handlerFailure, LoopObject);
            }
        }
        catch (Exception reportFailure)
        {
            CallbackFailure.Report(message, new AggregateException(e, reportFailure));
        }
    }

    // ---- Operations that must end when the loop closes ----

    /// <summary>Registers work that waits on this loop. Throws <see cref="LoopClosedException"/> when
    /// the loop is already closed (the caller fails its operation instead of waiting forever).</summary>
    internal void Track(IPendingOperation op)
    {
        lock (_pending)
        {
            ThrowIfClosed();
            _pending.Add(op);
        }
    }

    internal void Untrack(IPendingOperation op)
    {
        lock (_pending) _pending.Remove(op);
    }

    /// <summary>Closes our side: stops watching the eventfd, cancels .NET operations still
    /// waiting on this loop, fails queued loop work. On the loop thread, with the GIL, before
    /// loop.close().</summary>
    internal void Close(string reason = "closed") => CloseCore(loopAlive: true, reason);

    private void CloseCore(bool loopAlive, string reason)
    {
        if (IsClosed) return;
        _closedReason = reason;
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        s_loops.TryRemove(new KeyValuePair<nint, EventLoop>(_loopHandle, this));
        if (t_lastAdopted == this) t_lastAdopted = null;
        if (_eventFd >= 0)
        {
            if (loopAlive)
            {
                using var fdObj = PyConvert.ToPython(_eventFd);
                LoopObject.TryCallMethod(PyNames.remove_reader, PyBorrowed.Of(fdObj));
            }
            EventFd.Close(_eventFd);
            _eventFd = -1;
        }
        IPendingOperation[] pending;
        lock (_pending)
        {
            pending = [.. _pending];
            _pending.Clear();
        }
        foreach (var op in pending) op.OnLoopClosed();
        var targets = _reportTargets.Values.ToArray();
        _reportTargets.Clear();
        foreach (var target in targets) (target as IPendingOperation)?.OnLoopClosed();
        _reporter?.Dispose();
        // Loop work fails (it must never run without the loop); .NET continuations resume on the pool.
        AbandonQueued();
        _drain.Dispose();
        _loopWeakref?.Dispose();
        _selectorWeakref?.Dispose();
        _owned?.Dispose();
    }
}

/// <summary>Work was given to a Python event loop that is closed (or was collected): it cannot run.</summary>
public sealed class LoopClosedException(string message) : ObjectDisposedException(null, message);

/// <summary>Receives the outcome of a coroutine run by run_and_report.</summary>
internal interface IReportTarget
{
    /// <param name="ok">True for a result, false for an exception.</param>
    /// <param name="value">Borrowed: the result, or the exception.</param>
    void OnReport(bool ok, PyBorrowed value);
}

/// <summary>Work that waits on a loop and must be ended (cancelled) when the loop closes.</summary>
internal interface IPendingOperation
{
    void OnLoopClosed();
}
