using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// Python owns the thread (pyo3-asyncio's original design): a new event loop runs on the calling
/// thread — usually Main — until a .NET async main completes, then is shut down the way asyncio.run
/// does it. Ctrl-C cancels the main's token, lets it clean up, and then raises KeyboardInterrupt
/// (<see cref="PythonKeyboardInterruptException"/>), so the process can exit as a Python program would;
/// a second Ctrl-C stops waiting for the cleanup.
/// </summary>
public static class Asyncio
{
    /// <summary>Runs <paramref name="main"/> in a new event loop on this thread.</summary>
    public static void Run(Func<CancellationToken, Task> main) => Run(ct => AsResult(main(ct)));

    private static async Task<object?> AsResult(Task task)
    {
        await task;
        return null;
    }

    /// <summary>Runs <paramref name="main"/> in a new event loop on this thread and returns its result.</summary>
    public static T Run<T>(Func<CancellationToken, Task<T>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        PythonRuntime.Initialize();
        using var gil = Gil.Acquire();
        PyNames.EnsureReady();
        using var loopObj = PyNames.Asyncio.CallMethod("new_event_loop");
        using (PyNames.Asyncio.CallMethod("set_event_loop", loopObj)) { }
        try
        {
            return RunOn(loopObj, main, shutDown: true);
        }
        finally
        {
            using (PyNames.Asyncio.CallMethod("set_event_loop", Py.None)) { }
        }
    }

    /// <summary>Runs <paramref name="main"/> until complete on a loop you own (which must not be
    /// running); the loop stays open for you to reuse or close.</summary>
    public static T RunUntilComplete<T>(PyObject loop, Func<CancellationToken, Task<T>> main)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(main);
        PythonRuntime.Initialize();
        using var gil = Gil.Acquire();
        PyNames.EnsureReady();
        return RunOn(loop, main, shutDown: false);
    }

    private static T RunOn<T>(PyObject loopObj, Func<CancellationToken, Task<T>> main, bool shutDown)
    {
        var loop = EventLoop.Own(loopObj);
        var previousContext = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(loop.SyncContext);
        using var cts = new CancellationTokenSource();
        var sigint = SigintHandler.TryInstall(loop, loopObj, cts);
        try
        {
            using var locals = new TaskLocalsOwner(loop);
            var (mainTask, future) = StartInTask(loop, locals.Locals, main, cts.Token);
            using var _ = future;
            try
            {
                loop.RunLoop("run_until_complete", future);
            }
            catch (PythonException e) when (sigint?.Interrupted == true || e is PythonKeyboardInterruptException)
            {
                // Ctrl-C: the loop was stopped (second Ctrl-C), or KeyboardInterrupt escaped Python
                // code. Give the .NET main its cancellation and a chance to finish cleaning up.
                cts.Cancel();
                if (!mainTask.IsCompleted && sigint?.Forced != true)
                {
                    try { loop.RunLoop("run_until_complete", future); }
                    catch (Exception) { /* its outcome is superseded by the interrupt */ }
                }
                throw e as PythonKeyboardInterruptException ?? SigintHandler.KeyboardInterrupt();
            }
            catch (Exception) when (mainTask.IsCompleted)
            {
                // The main's own outcome, rethrown below with its .NET stack trace intact.
            }
            if (sigint?.Interrupted == true) throw SigintHandler.KeyboardInterrupt();
            return mainTask.GetAwaiter().GetResult();
        }
        finally
        {
            sigint?.Remove();
            loop.BeginClosing("closing (its Asyncio.Run is ending)");
            if (shutDown) ShutDown(loopObj);
            loop.Close("closed (its Asyncio.Run ended)");
            if (shutDown) using (loopObj.CallMethod("close")) { }
            SynchronizationContext.SetSynchronizationContext(previousContext);
        }
    }

    /// <summary>
    /// The asyncio Task that starts <paramref name="main"/> in its first step (the loop running, so
    /// get_running_loop works there) and drives it: a Python coroutine the main awaits directly is
    /// stepped inside this Task (see <see cref="PyAwaiter{T}"/>). The Task runs in the context of
    /// <paramref name="locals"/>; its outcome is the main's.
    /// </summary>
    private static (Task<T> Main, PyObject Task) StartInTask<T>(EventLoop loop, TaskLocals locals, Func<CancellationToken, Task<T>> main, CancellationToken token)
    {
        var started = new TaskCompletionSource<Task<T>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = Driver.StartTask(loop, () =>
        {
            Task<T> work;
            using (TaskLocals.Enter(locals))
            {
                try { work = main(token); }
                catch (Exception e) { work = Task.FromException<T>(e); }
            }
            started.SetResult(work);
            return work;
        }, locals.Context).MoveToObject();
        return (started.Task.Unwrap(), task);
    }

    /// <summary>What asyncio.run does after main: cancel what is left, finish async generators and
    /// the default executor. On the loop thread with the GIL, the loop not running.</summary>
    internal static void ShutDown(PyObject loopObj)
    {
        try
        {
            PyNames.EnsureReady();
            using (PyNames.ShutDownLoop.Call(loopObj)) { }
        }
        catch (PythonException e)
        {
            CallbackFailure.Report("shutting the event loop down", e);
        }
    }

    private sealed class TaskLocalsOwner : IDisposable
    {
        internal TaskLocalsOwner(EventLoop loop) =>
            Locals = new TaskLocals(loop, PyContextApi.CopyCurrent().MoveToObject());

        internal TaskLocals Locals { get; }

        public void Dispose() => Locals.Context?.Dispose();
    }
}

/// <summary>SIGINT for a loop that Python runs on the main thread: the first Ctrl-C cancels the
/// .NET main, a second stops the loop.</summary>
internal sealed class SigintHandler : NoArgsCallback
{
    private readonly PyObject _loop;
    private readonly CancellationTokenSource _cts;
    private readonly EventLoop _eventLoop;
    // What SIGINT did before: the OS-level disposition (often the .NET runtime's own handler, behind
    // Console.CancelKeyPress) and Python's idea of it. Both are put back when the loop is done, or
    // Ctrl-C would stay with Python's KeyboardInterrupt for the rest of the process.
    private SavedSignalAction? _previousAction;
    private PyObject? _previousPythonHandler;

    private SigintHandler(EventLoop eventLoop, PyObject loop, CancellationTokenSource cts)
    {
        _eventLoop = eventLoop;
        _loop = loop;
        _cts = cts;
    }

    internal bool Interrupted { get; private set; }
    internal bool Forced { get; private set; }

    /// <summary>Installs through loop.add_signal_handler, which also wakes the loop through its
    /// self-pipe, whichever thread the signal lands on. Only the main thread may do this.</summary>
    internal static SigintHandler? TryInstall(EventLoop eventLoop, PyObject loop, CancellationTokenSource cts)
    {
        using var threading = Py.Import("threading");
        using var current = threading.CallMethod("current_thread");
        using var mainThread = threading.CallMethod("main_thread");
        if (current.DangerousGetHandle() != mainThread.DangerousGetHandle()) return null;
        var handler = new SigintHandler(eventLoop, loop, cts);
        using var signal = Py.Import("signal");
        using var sigint = signal.GetAttr("SIGINT");
        handler._previousAction = SavedSignalAction.Save(LibC.SIGINT);
        handler._previousPythonHandler = signal.CallMethod("getsignal", sigint);
        try
        {
            using var callback = Callbacks.NoArgs(handler).MoveToObject();
            using (loop.CallMethod("add_signal_handler", sigint, callback)) { }
            return handler;
        }
        catch (PythonException e) when (e.PythonTypeName is "NotImplementedError" or "RuntimeError" or "ValueError")
        {
            handler.RestorePrevious(signal, sigint);
            return null; // a loop without signal support: Python's own handler raises KeyboardInterrupt
        }
    }

    private void RestorePrevious(PyObject signal, PyObject sigint)
    {
        // None: the handler was not installed from Python (e.g. the .NET runtime's); only the
        // OS-level restore below can put it back.
        if (_previousPythonHandler is { IsNone: false } pythonHandler)
        {
            try { using (signal.CallMethod("signal", sigint, pythonHandler)) { } }
            catch (PythonException) { /* not restorable from Python: the OS-level restore still runs */ }
        }
        _previousPythonHandler?.Dispose();
        _previousPythonHandler = null;
        _previousAction?.Restore();
    }

    internal override void Invoke()
    {
        if (!Interrupted)
        {
            Interrupted = true;
            try { _cts.Cancel(); }
            catch (AggregateException e) { _eventLoop.ReportUnhandled(e, "a cancellation callback threw during Ctrl-C"); }
            return;
        }
        Forced = true;
        using (_loop.CallMethod("stop")) { }
    }

    internal void Remove()
    {
        using var signal = Py.Import("signal");
        using var sigint = signal.GetAttr("SIGINT");
        try { using (_loop.CallMethod("remove_signal_handler", sigint)) { } }
        catch (PythonException) { }
        RestorePrevious(signal, sigint);
    }

    internal static PythonException KeyboardInterrupt() => PyErrorState.KeyboardInterrupt();
}
