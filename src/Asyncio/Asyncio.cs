using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// Python owns the thread (pyo3-asyncio's original design): a new event loop runs on the calling
/// thread — usually Main — until a .NET async main completes, then is shut down the way asyncio.run
/// does it. Ctrl-C cancels the main's token, lets it clean up, and then raises KeyboardInterrupt
/// (<see cref="PythonKeyboardInterruptException"/>), so the process can exit as a Python program would;
/// a second Ctrl-C stops waiting for the cleanup. <see cref="RunMain(Func{CancellationToken, Task{int}})"/>
/// does that exit for a console program.
/// </summary>
public static class Asyncio
{
    /// <summary>Runs <paramref name="main"/> in a new event loop on this thread.</summary>
    public static void Run(Func<CancellationToken, Task> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        Run(ct => AsResult(main(ct)), CancellationToken.None);
    }

    /// <summary>Runs <paramref name="main"/> in a new event loop on this thread;
    /// <paramref name="cancellationToken"/> cancels the main's token (see
    /// <see cref="Run{T}(Func{CancellationToken, Task{T}}, CancellationToken)"/>).</summary>
    public static void Run(Func<CancellationToken, Task> main, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(main);
        Run(ct => AsResult(main(ct)), cancellationToken);
    }

    private static async Task<object?> AsResult(Task task)
    {
        await task;
        return null;
    }

    /// <summary>Runs <paramref name="main"/> in a new event loop on this thread and returns its result.</summary>
    public static T Run<T>(Func<CancellationToken, Task<T>> main) => Run(main, CancellationToken.None);

    /// <summary>
    /// Runs <paramref name="main"/> in a new event loop on this thread and returns its result.
    /// Cancelling <paramref name="cancellationToken"/> cancels the main's token, on the loop thread
    /// (as Ctrl-C does), and with it the Python awaitables awaited through that token. A main that
    /// then ends canceled makes this throw an <see cref="OperationCanceledException"/> whose
    /// <see cref="OperationCanceledException.CancellationToken"/> is <paramref name="cancellationToken"/>
    /// (the main's own exception inside); a main that finishes anyway returns its result, and one that
    /// fails otherwise throws its exception. A token cancelled before the call throws at once,
    /// without starting a loop.
    /// </summary>
    public static T Run<T>(Func<CancellationToken, Task<T>> main, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(main);
        cancellationToken.ThrowIfCancellationRequested();
        PythonRuntime.Initialize();
        using var gil = Gil.Acquire();
        PyNames.EnsureReady();
        using var loopObj = PyNames.Asyncio.CallMethod("new_event_loop");
        using (PyNames.Asyncio.CallMethod("set_event_loop", loopObj)) { }
        try
        {
            return RunOn(loopObj, main, shutDown: true, cancellationToken);
        }
        finally
        {
            using (PyNames.Asyncio.CallMethod("set_event_loop", Py.None)) { }
        }
    }

    /// <summary>
    /// The entry point of a console program: runs <paramref name="main"/> as
    /// <see cref="Run(Func{CancellationToken, Task})"/> does and returns the exit status a Python
    /// program would end with, so that <c>static int Main() =&gt; Asyncio.RunMain(...)</c> never ends
    /// in .NET's "Unhandled exception" abort. See <see cref="RunMain(Func{CancellationToken, Task{int}})"/>.
    /// </summary>
    public static int RunMain(Func<CancellationToken, Task> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        return RunMain(async ct =>
        {
            await main(ct);
            return 0;
        });
    }

    /// <summary>
    /// The entry point of a console program whose main returns its exit status. Returns that status
    /// on success; 130 after Ctrl-C (KeyboardInterrupt, once the main was cancelled and has cleaned
    /// up; "KeyboardInterrupt" is printed to stderr); for SystemExit its code (<c>sys.exit()</c> 0,
    /// <c>sys.exit(n)</c> n, <c>sys.exit("message")</c> prints the message to stderr and returns 1);
    /// for any other exception 1, after printing it to stderr — a Python exception through
    /// <c>sys.excepthook</c> (the traceback Python prints), a .NET one as its
    /// <see cref="Exception.ToString"/>. Python's <c>sys.stdout</c> and <c>sys.stderr</c> are flushed
    /// before it returns, as the interpreter does at exit.
    /// </summary>
    public static int RunMain(Func<CancellationToken, Task<int>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        int status;
        try
        {
            status = Run(main, CancellationToken.None);
        }
        catch (PythonKeyboardInterruptException)
        {
            Console.Error.WriteLine("KeyboardInterrupt");
            status = 130; // 128 + SIGINT, what a shell reports for a Python program ended by Ctrl-C
        }
        catch (PythonSystemExitException e)
        {
            status = ExitProgram.StatusOf(e);
        }
        catch (Exception e)
        {
            ExitProgram.PrintUnhandled(e);
            status = 1;
        }
        ExitProgram.FlushPythonStreams();
        return status;
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
        return RunOn(loop, main, shutDown: false, CancellationToken.None);
    }

    private static T RunOn<T>(PyObject loopObj, Func<CancellationToken, Task<T>> main, bool shutDown, CancellationToken external)
    {
        var loop = EventLoop.Own(loopObj);
        var previousContext = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(loop.SyncContext);
        using var cts = new CancellationTokenSource();
        var sigint = SigintHandler.TryInstall(loop, loopObj, cts);
        // The external token may be cancelled on any thread: the main's token is cancelled on the
        // loop thread instead, so its callbacks run where the main's code does (as for Ctrl-C). Work
        // posted after the loop closed is dropped, which is right: the main has ended by then.
        var registration = external.UnsafeRegister(static s =>
            (((EventLoop, CancellationTokenSource))s!).Item1.PostLoopWork(static s => CancelMain(s!), static (_, _) => { }, s), (loop, cts));
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
            try
            {
                return mainTask.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException e) when (external.IsCancellationRequested)
            {
                throw new OperationCanceledException("Asyncio.Run was cancelled through its token, and its main ended canceled.", e, external);
            }
            catch (TaskSchedulerException e) when (e.InnerException is LoopBlockedException blocked)
            {
                throw blocked; // its StackTrace is that of the blocking call, kept through the rethrow
            }
        }
        finally
        {
            // Unregister, not Dispose: Dispose waits for a callback running on another thread, and
            // this thread holds the GIL.
            registration.Unregister();
            sigint?.Remove();
            loop.BeginClosing("closing (its Asyncio.Run is ending)");
            if (shutDown) ShutDown(loopObj);
            loop.Close("closed (its Asyncio.Run ended)");
            if (shutDown) using (loopObj.CallMethod("close")) { }
            SynchronizationContext.SetSynchronizationContext(previousContext);
        }
    }

    private static void CancelMain(object state)
    {
        var (loop, cts) = ((EventLoop, CancellationTokenSource))state;
        try { cts.Cancel(); }
        catch (ObjectDisposedException) { /* the Run has ended */ }
        catch (AggregateException e) { loop.ReportUnhandled(e, "a cancellation callback threw when Asyncio.Run's token was cancelled"); }
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

/// <summary>How <see cref="Asyncio.RunMain(Func{CancellationToken, Task{int}})"/> ends a program the
/// way the Python interpreter does (Python/pythonrun.c: handle_system_exit, PyErr_Print).</summary>
internal static class ExitProgram
{
    /// <summary>SystemExit's code: None is 0, an int is itself, anything else is printed to
    /// sys.stderr and gives 1.</summary>
    internal static int StatusOf(PythonSystemExitException e)
    {
        try
        {
            using var code = e.Value.GetAttr("code");
            if (code.IsNone) return 0;
            using var builtins = Py.Import("builtins");
            using var intType = builtins.GetAttr("int");
            if (code.IsInstance(intType) && code.TryConvert(out long status)) return (int)status;
            WriteToPythonStderr(code.ToString() + "\n");
            return 1;
        }
        catch (Exception failure)
        {
            Console.Error.WriteLine($"SystemExit: its code could not be read ({failure.Message})");
            return 1;
        }
    }

    /// <summary>Prints an exception that ended the main: a Python one through sys.excepthook, as the
    /// interpreter prints an uncaught exception; a .NET one, or when the hook fails, as .NET formats it.</summary>
    internal static void PrintUnhandled(Exception e)
    {
        if (e is PythonException pe && PythonRuntime.IsInitialized)
        {
            try
            {
                using var sys = Py.Import("sys");
                using var hook = sys.GetAttr("excepthook");
                using var type = pe.Value.GetAttr("__class__");
                using var traceback = pe.Value.GetAttr("__traceback__");
                using (hook.Call(type, pe.Value, traceback)) { }
                return;
            }
            catch (Exception) { /* no usable hook: .NET's own formatting below */ }
        }
        Console.Error.WriteLine(e.ToString());
    }

    /// <summary>What the interpreter does at exit: output Python code buffered is written out.</summary>
    internal static void FlushPythonStreams()
    {
        if (!PythonRuntime.IsInitialized) return;
        try
        {
            using var sys = Py.Import("sys");
            foreach (var name in (string[])["stdout", "stderr"])
            {
                using var stream = sys.GetAttr(name);
                if (!stream.IsNone) using (stream.CallMethod("flush")) { }
            }
        }
        catch (Exception) { /* a closed or broken stream: nothing more can be written to it */ }
    }

    private static void WriteToPythonStderr(string text)
    {
        try
        {
            using var sys = Py.Import("sys");
            using var stderr = sys.GetAttr("stderr");
            if (!stderr.IsNone)
            {
                using (stderr.CallMethod("write", text)) { }
                return;
            }
        }
        catch (Exception) { /* fall back to .NET's stderr */ }
        Console.Error.Write(text);
    }
}
