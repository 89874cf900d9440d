namespace AsyncioRaw;

/// <summary>
/// Hosted mode, for hosts that own their main thread (ASP.NET, services, GUIs): an event loop on a
/// dedicated thread. Work can be submitted from any thread; it runs on the loop thread with the
/// loop's task locals. Disposal cancels what is pending, stops and closes the loop, and joins the
/// thread within a timeout. Once the loop has stopped — disposed, or stopped by Python code
/// (<c>loop.stop()</c>, <c>SystemExit</c>) — new work fails at once with
/// <see cref="LoopClosedException"/> (an <see cref="ObjectDisposedException"/>).
/// </summary>
public sealed class EventLoopThread : IDisposable, IAsyncDisposable
{
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource<EventLoop> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Func<PyObject>? _loopFactory;
    private TaskLocals? _locals;
    private int _disposed;

    /// <param name="name">The thread's name.</param>
    /// <param name="loopFactory">Makes the loop (on the loop thread, with the GIL); default
    /// asyncio.new_event_loop(), which honours the event loop policy (e.g. uvloop's).</param>
    public EventLoopThread(string name = "asyncio event loop", Func<PyObject>? loopFactory = null)
    {
        PythonRuntime.Initialize();
        _loopFactory = loopFactory;
        _thread = new Thread(Main) { Name = name, IsBackground = true };
        _thread.Start();
        // The new thread needs the GIL to start its loop: a caller holding it releases it to wait.
        Loop = GilWait.Wait(_started.Task);
    }

    /// <summary>The loop this thread runs; work for it may be posted from any thread.</summary>
    public EventLoop Loop { get; }

    /// <summary>Cancelled when the loop thread starts shutting down.</summary>
    public CancellationToken Stopping => _stopping.Token;

    private void Main()
    {
        try
        {
            using (Gil.Acquire())
            {
                PyNames.EnsureReady();
                using var loopObj = _loopFactory?.Invoke() ?? PyNames.Asyncio.CallMethod("new_event_loop");
                using (PyNames.Asyncio.CallMethod("set_event_loop", loopObj)) { }
                EventLoop loop;
                try
                {
                    loop = EventLoop.Own(loopObj);
                }
                catch
                {
                    ForgetLoop(loopObj);
                    throw;
                }
                SynchronizationContext.SetSynchronizationContext(loop.SyncContext);
                using var context = PyContextApi.CopyCurrent().MoveToObject();
                _locals = new TaskLocals(loop, context);
                _started.SetResult(loop);
                try
                {
                    loop.RunLoop("run_forever");
                }
                finally
                {
                    // Stopped by Dispose, or by Python code: either way the work still running on
                    // this loop is told, and new work is refused from here on.
                    _stopping.Cancel();
                    loop.BeginClosing(_disposed != 0 ? "closing (its EventLoopThread is being disposed)" : "closing (stopped by Python code)");
                    Asyncio.ShutDown(loopObj);
                    loop.Close(_disposed != 0 ? "closed (its EventLoopThread was disposed)" : "closed (stopped by Python code)");
                    using (loopObj.CallMethod("close")) { }
                    ForgetLoop(loopObj);
                    SynchronizationContext.SetSynchronizationContext(null);
                }
            }
            _stopped.TrySetResult();
        }
        catch (Exception e)
        {
            if (!_started.TrySetException(e)) _stopped.TrySetException(e);
        }
    }

    /// <summary>The event loop policy keeps the last loop set on this thread: let go of it, or every
    /// disposed EventLoopThread leaves its closed loop alive.</summary>
    private static void ForgetLoop(PyObject loopObj)
    {
        try { using (PyNames.Asyncio.CallMethod("set_event_loop", Py.None)) { } }
        catch (PythonException e) { CallbackFailure.Report("clearing the thread's event loop", e); }
    }

    /// <summary>Runs <paramref name="work"/> on the loop thread (its continuations come back there).
    /// Its token is cancelled by <paramref name="cancellationToken"/> or when the loop stops.</summary>
    /// <exception cref="ObjectDisposedException">Disposed, or the loop has stopped
    /// (<see cref="LoopClosedException"/>).</exception>
    public Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        Loop.ThrowIfClosed();
        var promise = new LoopPromise<T>(Loop);
        var linked = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, cancellationToken);
        var loop = Loop;
        // Like Task.Run, the work runs in the caller's ExecutionContext (its AsyncLocals, e.g. a
        // test framework's current test), with the loop's task locals on top.
        var callerContext = ExecutionContext.Capture();
        Loop.PostLoopWork(_ =>
        {
            if (loop.RefusesNewWork)
            {
                linked.Dispose();
                promise.SetException(loop.Closed());
                return;
            }
            Task<T> task = null!;
            void Start()
            {
                using (TaskLocals.Enter(_locals))
                {
                    try { task = work(linked.Token); }
                    catch (Exception e) { task = Task.FromException<T>(e); }
                }
            }
            if (callerContext is null) Start();
            else ExecutionContext.Run(callerContext, static s => ((Action)s!)(), (Action)Start);
            task.ContinueWith(static (t, s) =>
            {
                var (promise, linked) = ((LoopPromise<T>, CancellationTokenSource))s!;
                linked.Dispose();
                promise.SetFrom(t);
            }, (promise, linked), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }, static (s, e) =>
        {
            var (promise, linked) = ((LoopPromise<T>, CancellationTokenSource))s!;
            linked.Dispose();
            promise.SetException(e);
        }, (promise, linked));
        return promise.Task;
    }

    /// <summary>Runs <paramref name="work"/> on the loop thread, as <see cref="RunAsync{T}"/> does,
    /// for work with no result.</summary>
    public Task RunAsync(Func<CancellationToken, Task> work, CancellationToken cancellationToken = default) =>
        RunAsync<object?>(async ct => { await work(ct); return null; }, cancellationToken);

    /// <summary>Calls <paramref name="callable"/> on the loop thread and, if it returns an awaitable,
    /// awaits it there. No GIL is taken on the calling thread.</summary>
    public Task<TResult> CallAsync<TResult>(PyObject callable, CancellationToken cancellationToken = default) =>
        RunAsync(ct => AwaitResult<TResult>(callable.Call(), ct), cancellationToken);

    /// <summary>Calls <paramref name="callable"/> with one argument converted to Python on the loop
    /// thread and, if it returns an awaitable, awaits it there.</summary>
    public Task<TResult> CallAsync<T1, TResult>(PyObject callable, T1 a1, CancellationToken cancellationToken = default) =>
        RunAsync(ct => AwaitResult<TResult>(callable.Call<T1, PyObject>(a1), ct), cancellationToken);

    /// <summary>Calls <paramref name="callable"/> with <paramref name="args"/> converted to Python
    /// on the loop thread and, if it returns an awaitable, awaits it there.</summary>
    public Task<TResult> CallAsync<TResult>(PyObject callable, object?[] args, CancellationToken cancellationToken = default) =>
        RunAsync(ct => AwaitResult<TResult>(callable.Call(args), ct), cancellationToken);

    private Task<TResult> AwaitResult<TResult>(PyObject result, CancellationToken ct)
    {
        using (result)
        {
            if (IsAwaitable(result)) return PyAwaitable.ToTask<TResult>(result, Loop, ct);
            return Task.FromResult(result.As<TResult>());
        }
    }

    private static bool IsAwaitable(PyObject o)
    {
        using var gil = Gil.Acquire();
        return PyBorrowed.Of(o).HasExactType(PyNames.CoroutineType) || o.HasAttr("__await__");
    }

    /// <summary>Stops the loop: cancels work submitted through this object and every asyncio task,
    /// runs the asyncio shutdown steps, closes the loop and joins the thread.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) { await _stopped.Task.ConfigureAwait(false); return; }
        Loop.BeginClosing("closing (its EventLoopThread is being disposed)");
        _stopping.Cancel();
        // A loop that already stopped has nothing left to stop.
        Loop.PostLoopWork(static s => ((EventLoopThread)s!).StopLoop(), static (_, _) => { }, this);
        await _stopped.Task.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        _thread.Join();
    }

    /// <summary>Disposes synchronously. A thread holding the GIL releases it while it waits; the
    /// loop's own thread cannot wait for its loop to stop and gets an exception (use
    /// <see cref="DisposeAsync"/> there).</summary>
    public void Dispose()
    {
        if (Loop.IsOnLoopThread)
            throw new InvalidOperationException(
                "An EventLoopThread cannot be disposed synchronously from its own loop thread (it would wait for itself); use DisposeAsync.");
        GilWait.Wait(DisposeAsync().AsTask());
    }

    private void StopLoop()
    {
        using var loop = Loop.Loop;
        using (loop.CallMethod("stop")) { }
    }
}
