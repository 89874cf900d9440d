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

    // CallAsync: calls the callable on the loop thread and, if it returns an awaitable, awaits it
    // there; the result is converted to TResult. No GIL is taken on the calling thread. The typed
    // arguments are converted on the loop thread without boxing; keyword arguments go as
    // ("name", value) pairs: loop.CallAsync<long, long>(f, 1, kwargs: [("b", 2)]).

    /// <summary>Calls <paramref name="callable"/> on the loop thread and, if it returns an awaitable,
    /// awaits it there. No GIL is taken on the calling thread.</summary>
    public Task<TResult> CallAsync<TResult>(PyObject callable, CancellationToken cancellationToken = default, (string Name, object? Value)[]? kwargs = null) =>
        Submit<TResult>(callable, kwargs, kw => callable.Call<PyObject>(kw), cancellationToken);

    /// <summary><c>callable(a1, **kwargs)</c> on the loop thread, awaited there if awaitable.</summary>
    public Task<TResult> CallAsync<T1, TResult>(PyObject callable, T1 a1, CancellationToken cancellationToken = default, (string Name, object? Value)[]? kwargs = null) =>
        Submit<TResult>(callable, kwargs, kw => callable.Call<T1, PyObject>(a1, kw), cancellationToken);

    /// <summary><c>callable(a1, a2, **kwargs)</c> on the loop thread, awaited there if awaitable.</summary>
    public Task<TResult> CallAsync<T1, T2, TResult>(PyObject callable, T1 a1, T2 a2, CancellationToken cancellationToken = default, (string Name, object? Value)[]? kwargs = null) =>
        Submit<TResult>(callable, kwargs, kw => callable.Call<T1, T2, PyObject>(a1, a2, kw), cancellationToken);

    /// <summary><c>callable(a1, a2, a3, **kwargs)</c> on the loop thread, awaited there if awaitable.</summary>
    public Task<TResult> CallAsync<T1, T2, T3, TResult>(PyObject callable, T1 a1, T2 a2, T3 a3, CancellationToken cancellationToken = default, (string Name, object? Value)[]? kwargs = null) =>
        Submit<TResult>(callable, kwargs, kw => callable.Call<T1, T2, T3, PyObject>(a1, a2, a3, kw), cancellationToken);

    /// <summary><c>callable(a1, a2, a3, a4, **kwargs)</c> on the loop thread, awaited there if awaitable.</summary>
    public Task<TResult> CallAsync<T1, T2, T3, T4, TResult>(PyObject callable, T1 a1, T2 a2, T3 a3, T4 a4, CancellationToken cancellationToken = default, (string Name, object? Value)[]? kwargs = null) =>
        Submit<TResult>(callable, kwargs, kw => callable.Call<T1, T2, T3, T4, PyObject>(a1, a2, a3, a4, kw), cancellationToken);

    /// <summary><c>callable(a1, a2, a3, a4, a5, **kwargs)</c> on the loop thread, awaited there if awaitable.</summary>
    public Task<TResult> CallAsync<T1, T2, T3, T4, T5, TResult>(PyObject callable, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, CancellationToken cancellationToken = default, (string Name, object? Value)[]? kwargs = null) =>
        Submit<TResult>(callable, kwargs, kw => callable.Call<T1, T2, T3, T4, T5, PyObject>(a1, a2, a3, a4, a5, kw), cancellationToken);

    /// <summary><c>callable(*args)</c>, the arguments converted as <see cref="PyConvert.ToPython"/> does.</summary>
    public Task<TResult> CallAsync<TResult>(PyObject callable, object?[] args, CancellationToken cancellationToken = default) =>
        RunAsync(ct => AwaitResult<TResult>(callable.Call(args), ct), cancellationToken);

    /// <summary>The shared body of the typed CallAsync. The keyword array is copied here: the caller
    /// may reuse its array once CallAsync returns.</summary>
    private Task<TResult> Submit<TResult>(PyObject callable, (string Name, object? Value)[]? kwargs,
        Func<(string Name, object? Value)[]?, PyObject> call, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(callable);
        var keywords = kwargs is { Length: > 0 } ? ((string Name, object? Value)[])kwargs.Clone() : null;
        return RunAsync(ct => AwaitResult<TResult>(call(keywords), ct), cancellationToken);
    }

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

    /// <summary>How long <see cref="DisposeAsync"/> and <see cref="Dispose"/> wait for the loop to stop.</summary>
    public static readonly TimeSpan DefaultStopTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Completes when the loop thread has stopped, shut its loop down and closed it
    /// (faulted if starting or closing the loop failed). Useful after a <see cref="StopAsync(TimeSpan)"/>
    /// that timed out.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>
    /// Stops the loop, as <see cref="DisposeAsync"/> does, waiting at most <paramref name="timeout"/>:
    /// true once it has stopped and closed and its thread has ended; false when the timeout passed
    /// first. The stop stays requested either way: the loop refuses new work
    /// (<see cref="LoopClosedException"/>), <see cref="Stopping"/> is cancelled, and its thread stops,
    /// shuts the loop down and closes it as soon as the Python code it is running gives control back
    /// (a callback in <c>time.sleep</c>, or a task that swallows CancelledError, which the shutdown
    /// waits for as <c>asyncio.run</c> does). Nothing runs off the loop thread meanwhile;
    /// <see cref="Stopped"/> tells when it is done. Safe to call more than once and from the loop thread.
    /// </summary>
    /// <param name="timeout">At most this long (<see cref="Timeout.InfiniteTimeSpan"/> to wait until stopped).</param>
    public async Task<bool> StopAsync(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be positive, zero, or Timeout.InfiniteTimeSpan.");
        RequestStop();
        var stopped = _stopped.Task;
        if (!stopped.IsCompleted)
        {
            using var cancelDelay = new CancellationTokenSource();
            var delay = Task.Delay(timeout, cancelDelay.Token);
            if (await Task.WhenAny(stopped, delay).ConfigureAwait(false) != stopped) return false;
            cancelDelay.Cancel();
        }
        await stopped.ConfigureAwait(false); // a failure to close the loop surfaces here
        JoinThread();
        return true;
    }

    /// <summary>Stops the loop, as <see cref="StopAsync(TimeSpan)"/> does, until it has stopped or
    /// <paramref name="cancellationToken"/> is cancelled; then the returned Task is canceled and the
    /// stop stays requested (see <see cref="StopAsync(TimeSpan)"/> for the state the loop is in).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        RequestStop();
        await _stopped.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        JoinThread();
    }

    /// <summary>Stops the loop: cancels work submitted through this object and every asyncio task,
    /// runs the asyncio shutdown steps, closes the loop and joins the thread. Throws
    /// <see cref="TimeoutException"/> if that takes longer than <see cref="DefaultStopTimeout"/>
    /// (the loop is then left as <see cref="StopAsync(TimeSpan)"/> describes).</summary>
    public async ValueTask DisposeAsync()
    {
        if (!await StopAsync(DefaultStopTimeout).ConfigureAwait(false))
            throw new TimeoutException(
                $"The EventLoopThread's loop did not stop within {DefaultStopTimeout.TotalSeconds:0} s: Python code on it " +
                "has not given control back. It stops and closes once that code returns; new work is refused meanwhile.");
    }

    /// <summary>The first call begins the stop; later calls find it begun.</summary>
    private void RequestStop()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Loop.BeginClosing("closing (its EventLoopThread is being disposed)");
        _stopping.Cancel();
        // A loop that already stopped has nothing left to stop.
        Loop.PostLoopWork(static s => ((EventLoopThread)s!).StopLoop(), static (_, _) => { }, this);
    }

    /// <summary>The thread has completed <see cref="_stopped"/> and only returns after that: a short
    /// wait, and none at all on the thread itself.</summary>
    private void JoinThread()
    {
        if (Thread.CurrentThread != _thread) _thread.Join();
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
