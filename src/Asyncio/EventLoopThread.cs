using AsyncioRaw.Interop;

namespace AsyncioRaw.Asyncio;

/// <summary>
/// Hosted mode, for hosts that own their main thread (ASP.NET, services, GUIs): an event loop on a
/// dedicated thread. Work can be submitted from any thread; it runs on the loop thread with the
/// loop's task locals. Disposal cancels what is pending, stops and closes the loop, and joins the
/// thread within a timeout.
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
        Loop = _started.Task.GetAwaiter().GetResult();
    }

    public EventLoop Loop { get; }

    /// <summary>Cancelled when the loop thread starts shutting down.</summary>
    public CancellationToken Stopping => _stopping.Token;

    private unsafe void Main()
    {
        try
        {
            using (Gil.Acquire())
            {
                PyNames.EnsureReady();
                using var loopObj = _loopFactory?.Invoke() ?? PyNames.Asyncio.CallMethod("new_event_loop");
                using (PyNames.Asyncio.CallMethod("set_event_loop", loopObj)) { }
                var loop = EventLoop.Own(loopObj);
                SynchronizationContext.SetSynchronizationContext(loop.SyncContext);
                using var context = PyObject.StealOrThrow(CPython.PyContext_CopyCurrent());
                _locals = new TaskLocals(loop, context);
                _started.SetResult(loop);
                try
                {
                    using (loopObj.CallMethod("run_forever")) { }
                }
                finally
                {
                    Asyncio.ShutDown(loopObj);
                    loop.Close();
                    using (loopObj.CallMethod("close")) { }
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

    /// <summary>Runs <paramref name="work"/> on the loop thread (its continuations come back there).
    /// Its token is cancelled by <paramref name="cancellationToken"/> or by disposal.</summary>
    public Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var linked = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, cancellationToken);
        // Like Task.Run, the work runs in the caller's ExecutionContext (its AsyncLocals, e.g. a
        // test framework's current test), with the loop's task locals on top.
        var callerContext = ExecutionContext.Capture();
        Loop.Post(_ =>
        {
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
                var (tcs, linked) = ((TaskCompletionSource<T>, CancellationTokenSource))s!;
                linked.Dispose();
                if (t.IsCompletedSuccessfully) tcs.TrySetResult(t.Result);
                else if (t.IsCanceled) tcs.TrySetCanceled();
                else tcs.TrySetException(t.Exception!.InnerExceptions);
            }, (tcs, linked), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        });
        return tcs.Task;
    }

    public Task RunAsync(Func<CancellationToken, Task> work, CancellationToken cancellationToken = default) =>
        RunAsync<object?>(async ct => { await work(ct); return null; }, cancellationToken);

    /// <summary>Calls <paramref name="callable"/> on the loop thread and, if it returns an awaitable,
    /// awaits it there. No GIL is taken on the calling thread.</summary>
    public Task<TResult> CallAsync<TResult>(PyObject callable, CancellationToken cancellationToken = default) =>
        RunAsync(ct => AwaitResult<TResult>(callable.Call(), ct), cancellationToken);

    public Task<TResult> CallAsync<T1, TResult>(PyObject callable, T1 a1, CancellationToken cancellationToken = default) =>
        RunAsync(ct => AwaitResult<TResult>(callable.Call<T1, PyObject>(a1), ct), cancellationToken);

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

    private static unsafe bool IsAwaitable(PyObject o)
    {
        using var gil = Gil.Acquire();
        var type = CPython.Py_TYPE(o.Handle);
        if (type == (PyTypeObject*)PyNames.CoroutineType.Handle) return true;
        return o.HasAttr("__await__");
    }

    /// <summary>Stops the loop: cancels work submitted through this object and every asyncio task,
    /// runs the asyncio shutdown steps, closes the loop and joins the thread.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) { await _stopped.Task.ConfigureAwait(false); return; }
        _stopping.Cancel();
        Loop.Post(static s => ((EventLoopThread)s!).StopLoop(), this);
        await _stopped.Task.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        _thread.Join();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private void StopLoop()
    {
        using var loop = Loop.Loop;
        using (loop.CallMethod("stop")) { }
    }
}
