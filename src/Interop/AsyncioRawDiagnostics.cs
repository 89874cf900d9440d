using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace AsyncioRaw;

/// <summary>
/// What an operator of a host that embeds Python can watch: the instruments of the
/// <see cref="MeterName"/> <see cref="Meter"/> (GIL wait and hold time, work queued to event loops,
/// awaits in flight both ways, deferred releases, Python thread states), and
/// <see cref="UnobservedError"/> for failures that nobody awaits. Instruments that measure cost
/// nothing on the hot path unless a listener (dotnet-counters, OpenTelemetry, a
/// <see cref="MeterListener"/>) has enabled them; the others are observed only when collected.
/// </summary>
public static class AsyncioRawDiagnostics
{
    /// <summary>The name of this library's <see cref="Meter"/>: what <c>dotnet-counters monitor
    /// --counters AsyncioRaw</c> or OpenTelemetry's <c>AddMeter("AsyncioRaw")</c> subscribes to.</summary>
    public const string MeterName = "AsyncioRaw";

    /// <summary>Histogram, seconds: how long an outermost <see cref="Gil.Acquire"/> (or the end of an
    /// <see cref="Gil.AllowThreads"/> scope) waited for the GIL. Re-entrant acquisitions and holds
    /// found already taken (Python called .NET) are not measured.</summary>
    public const string GilWaitInstrument = "asyncioraw.gil.wait";

    /// <summary>Histogram, seconds: how long a thread held the GIL it took through <see cref="Gil"/>,
    /// from the outermost acquisition to its release (an <see cref="Gil.AllowThreads"/> scope ends
    /// one hold and starts another). Python code inside may release the GIL itself for a while (a
    /// loop thread's hold spans its whole <c>Asyncio.Run</c>, select() included).</summary>
    public const string GilHoldInstrument = "asyncioraw.gil.hold";

    /// <summary>Counter, work items: posted to an event loop's .NET work queue, tagged with
    /// <see cref="LoopIdTag"/> and <see cref="WorkKindTag"/>.</summary>
    public const string LoopWorkPostedInstrument = "asyncioraw.loop.work.posted";

    /// <summary>Histogram, seconds: how long a work item waited in its loop's queue before it ran,
    /// tagged like <see cref="LoopWorkPostedInstrument"/>. Work abandoned by a closed loop is not
    /// measured.</summary>
    public const string LoopQueueWaitInstrument = "asyncioraw.loop.work.queue_wait";

    /// <summary>Observable up-down counter, work items: waiting in each open loop's queue now,
    /// tagged with <see cref="LoopIdTag"/>.</summary>
    public const string LoopWorkQueuedInstrument = "asyncioraw.loop.work.queued";

    /// <summary>Observable up-down counter, awaits: in flight now, tagged with
    /// <see cref="AwaitDirectionTag"/> (<c>dotnet_awaits_python</c>: a Task from PyAwaitable not yet
    /// completed; <c>python_awaits_dotnet</c>: an asyncio future from PyFuture whose .NET Task has
    /// not been delivered yet).</summary>
    public const string AwaitsInFlightInstrument = "asyncioraw.awaits.in_flight";

    /// <summary>Observable up-down counter, objects: releases of Python objects queued by threads
    /// without the GIL (the finalizer above all), waiting for the next GIL holder.</summary>
    public const string DeferredReleasesInstrument = "asyncioraw.deferred_releases.queued";

    /// <summary>Observable up-down counter, thread states: Python thread states this library created
    /// and has not deleted yet, tagged with <see cref="ThreadStateTag"/> (<c>live</c>: its thread
    /// runs; <c>exited</c>: its thread ended and the state waits to be deleted by a GIL holder).</summary>
    public const string ThreadStatesInstrument = "asyncioraw.thread_states";

    /// <summary>Tag: the <see cref="P:AsyncioRaw.EventLoop.Id"/> of the loop (an int, unique in the process).</summary>
    public const string LoopIdTag = "asyncioraw.loop.id";

    /// <summary>Tag: <c>loop_work</c> (touches Python, runs only on the loop thread) or
    /// <c>continuation</c> (a .NET continuation resuming on the loop).</summary>
    public const string WorkKindTag = "asyncioraw.work.kind";

    /// <summary>Tag: <c>dotnet_awaits_python</c> or <c>python_awaits_dotnet</c>.</summary>
    public const string AwaitDirectionTag = "asyncioraw.await.direction";

    /// <summary>Tag: <c>live</c> or <c>exited</c>.</summary>
    public const string ThreadStateTag = "asyncioraw.thread_state";

    private static readonly Meter s_meter = new(MeterName, typeof(AsyncioRawDiagnostics).Assembly.GetName().Version?.ToString());

    internal static readonly Histogram<double> GilWait = s_meter.CreateHistogram<double>(
        GilWaitInstrument, "s", "Time an outermost acquisition waited for the GIL");

    internal static readonly Histogram<double> GilHold = s_meter.CreateHistogram<double>(
        GilHoldInstrument, "s", "Time a thread held the GIL it took through AsyncioRaw's Gil");

    internal static readonly Counter<long> LoopWorkPosted = s_meter.CreateCounter<long>(
        LoopWorkPostedInstrument, "{item}", "Work items posted to an event loop");

    internal static readonly Histogram<double> LoopQueueWait = s_meter.CreateHistogram<double>(
        LoopQueueWaitInstrument, "s", "Time a work item waited in its event loop's queue");

    /// <summary>Set by the asyncio layer: the queue length of every open loop.</summary>
    internal static Func<IEnumerable<Measurement<long>>>? LoopQueueLengths;

    // Always counted (one interlocked add per await, nothing beside an await's own allocations), so
    // that a listener attached mid-flight sees the true level.
    private static long s_dotnetAwaitsPython;
    private static long s_pythonAwaitsDotnet;

    internal static void AwaitStarted(bool dotnetAwaitsPython) =>
        Interlocked.Increment(ref dotnetAwaitsPython ? ref s_dotnetAwaitsPython : ref s_pythonAwaitsDotnet);

    internal static void AwaitEnded(bool dotnetAwaitsPython) =>
        Interlocked.Decrement(ref dotnetAwaitsPython ? ref s_dotnetAwaitsPython : ref s_pythonAwaitsDotnet);

    static AsyncioRawDiagnostics()
    {
        s_meter.CreateObservableUpDownCounter(LoopWorkQueuedInstrument,
            static () => LoopQueueLengths?.Invoke() ?? [], "{item}", "Work items waiting in each event loop's queue");
        s_meter.CreateObservableUpDownCounter(AwaitsInFlightInstrument, static () => new Measurement<long>[]
        {
            new(Volatile.Read(ref s_dotnetAwaitsPython), new KeyValuePair<string, object?>(AwaitDirectionTag, "dotnet_awaits_python")),
            new(Volatile.Read(ref s_pythonAwaitsDotnet), new KeyValuePair<string, object?>(AwaitDirectionTag, "python_awaits_dotnet")),
        }, "{await}", "Awaits in flight between .NET and Python");
        s_meter.CreateObservableUpDownCounter(DeferredReleasesInstrument,
            static () => (long)DeferredRelease.Count, "{object}", "Releases of Python objects waiting for the GIL");
        s_meter.CreateObservableUpDownCounter(ThreadStatesInstrument, static () =>
        {
            var (live, exited) = Gil.ThreadStateCounts();
            return new Measurement<long>[]
            {
                new(live, new KeyValuePair<string, object?>(ThreadStateTag, "live")),
                new(exited, new KeyValuePair<string, object?>(ThreadStateTag, "exited")),
            };
        }, "{thread_state}", "Python thread states created by AsyncioRaw and not yet deleted");
    }

    /// <summary>Seconds from <paramref name="start"/> (a <see cref="Stopwatch"/> timestamp) to <paramref name="end"/>.</summary>
    internal static double Seconds(long start, long end) => Stopwatch.GetElapsedTime(start, end).TotalSeconds;

    // ---- Failures nobody observes ----

    /// <summary>
    /// A failure that nobody awaits and that cannot become a Python exception: a native callback's
    /// clean-up failing, a closed loop's abandon step throwing, asyncio's shutdown steps raising.
    /// With no subscriber it is written to <see cref="Console.Error"/> (as it always was). A
    /// subscriber is called on a thread-pool thread, never on the thread that failed: it holds no
    /// GIL and no lock of this library, so it may block, log, or call into Python (through
    /// <see cref="Gil.Acquire"/>; during finalization that throws). The sender is null. A
    /// subscriber that throws is reported to <see cref="Console.Error"/> alongside the failure
    /// and harms nothing else. Reports still queued when the process exits are lost.
    /// </summary>
    public static event EventHandler<UnobservedErrorEventArgs>? UnobservedError;

    /// <summary>Reports <paramref name="error"/>, raised while <paramref name="operation"/>. Any
    /// thread, with or without the GIL; never throws, never blocks, takes no lock.</summary>
    internal static void ReportUnobserved(string operation, Exception error)
    {
        try
        {
            if (Volatile.Read(ref UnobservedError) is null)
            {
                WriteToStandardError(operation, error);
                return;
            }
            // Not here: this thread may hold the GIL (or be inside a dealloc), and the handler may block.
            ThreadPool.UnsafeQueueUserWorkItem(static args => Raise(args), new UnobservedErrorEventArgs(error, operation), preferLocal: false);
        }
        catch (Exception queueing)
        {
            WriteToStandardError(operation, error, ("queueing the report failed", queueing));
        }
    }

    private static void Raise(UnobservedErrorEventArgs args)
    {
        var handlers = Volatile.Read(ref UnobservedError);
        if (handlers is null)
        {
            WriteToStandardError(args.Operation, args.Exception); // unsubscribed meanwhile
            return;
        }
        // Each subscriber on its own: one that throws does not keep the others from hearing of it.
        foreach (var handler in handlers.GetInvocationList())
        {
            try { ((EventHandler<UnobservedErrorEventArgs>)handler)(null, args); }
            catch (Exception handlerFailure) { WriteToStandardError(args.Operation, args.Exception, ("an UnobservedError subscriber threw", handlerFailure)); }
        }
    }

    private static void WriteToStandardError(string operation, Exception error, (string What, Exception Error)? reportFailure = null)
    {
        try
        {
            Console.Error.WriteLine($"AsyncioRaw: unexpected failure while {operation}: {error}");
            if (reportFailure is var (what, failure))
                Console.Error.WriteLine($"AsyncioRaw: reporting it failed too ({what}): {failure}");
        }
        catch { /* stderr is gone: nothing left to tell */ }
    }
}

/// <summary>A failure reported through <see cref="AsyncioRawDiagnostics.UnobservedError"/>.</summary>
public sealed class UnobservedErrorEventArgs : EventArgs
{
    internal UnobservedErrorEventArgs(Exception exception, string operation)
    {
        Exception = exception;
        Operation = operation;
    }

    /// <summary>What failed (a <see cref="PythonException"/> when Python code raised).</summary>
    public Exception Exception { get; }

    /// <summary>What the library was doing, e.g. "shutting the event loop down" or "freeing a
    /// managed handle".</summary>
    public string Operation { get; }
}
