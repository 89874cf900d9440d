namespace AsyncioRaw;

/// <summary>
/// Runs the tasks that stand for work a loop must finish (Python awaitables, work given to an
/// EventLoopThread): each is started on this scheduler at once but executed only when that work
/// completes. Its other job is blocking: .Wait() and .Result first try to run the task inline,
/// which lands in <see cref="TryExecuteTaskInline"/>. On the loop thread, with the work pending,
/// blocking would stop the very loop that has to finish it, so that throws. On any other thread
/// that holds the GIL, the loop may need the GIL to finish: the wait happens here, with the GIL
/// released, and .NET's own wait then finds the task complete.
/// </summary>
internal sealed class LoopTaskScheduler(EventLoop loop) : TaskScheduler
{
    protected override void QueueTask(Task task)
    {
        // Nothing to do: whoever finishes the work executes the task (see Execute).
    }

    internal bool Execute(Task task) => TryExecuteTask(task);

    // Cancelling a task's token only completes it as Canceled at once if its scheduler lets go of
    // it; nothing is really queued here, so always let go (a later Execute then does nothing).
    protected override bool TryDequeue(Task task) => true;

    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued)
    {
        if (task.AsyncState is not IAwaitOperation { IsPythonDone: false }) return false;
        if (loop.IsOnLoopThread)
            throw new LoopBlockedException(
                "Blocking on a Python awaitable from its event loop's thread would deadlock: the loop cannot " +
                "run while this thread waits for it. Use 'await' instead of .Result/.Wait().");
        if (Gil.IsHeld) GilWait.UntilCompleted(task); // .NET's own wait then finds it complete
        return false;
    }

    protected override IEnumerable<Task> GetScheduledTasks() => [];
}

internal interface IAwaitOperation
{
    bool IsPythonDone { get; }
}

/// <summary>
/// A TaskCompletionSource whose task lives on a loop's <see cref="LoopTaskScheduler"/>, so that
/// blocking on it is refused on the loop thread and done without the GIL elsewhere.
/// </summary>
internal sealed class LoopPromise<T> : IAwaitOperation
{
    private readonly CancellationTokenSource _canceled = new();
    private readonly LoopTaskScheduler _scheduler;
    private T _result = default!;
    private Exception? _error;
    private volatile bool _done;

    internal LoopPromise(EventLoop loop)
    {
        _scheduler = loop.Scheduler;
        Task = new Task<T>(static s => ((LoopPromise<T>)s!).TakeResult(), this, _canceled.Token);
        Task.Start(_scheduler);
    }

    internal Task<T> Task { get; }

    public bool IsPythonDone => _done;

    private T TakeResult()
    {
        if (_error is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e); // keeps its stack trace
        return _result;
    }

    internal void SetResult(T result)
    {
        if (_done) return;
        _result = result;
        _done = true;
        _scheduler.Execute(Task);
    }

    internal void SetException(Exception error)
    {
        if (_done) return;
        _error = error;
        _done = true;
        _scheduler.Execute(Task);
    }

    internal void SetCanceled()
    {
        if (_done) return;
        _done = true;
        _canceled.Cancel();
    }

    /// <summary>Completes like <paramref name="task"/> did.</summary>
    internal void SetFrom(Task<T> task)
    {
        if (task.IsCompletedSuccessfully) SetResult(task.Result);
        else if (task.IsCanceled) SetCanceled();
        else SetException(LoopBlockedException.Unwrap(task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerExceptions[0] : task.Exception));
    }
}

/// <summary>
/// A thread was about to wait for work that only its own event loop can do, which would deadlock
/// (the loop cannot run while its thread waits): <c>.Result</c>, <c>.Wait()</c> or
/// <c>GetAwaiter().GetResult()</c> on a pending Python awaitable or <see cref="EventLoopThread"/>
/// work, on the loop's thread. Its <see cref="StackTrace"/> is that of the blocking call.
/// </summary>
/// <remarks>
/// .NET wraps whatever a TaskScheduler throws from an inline wait in a
/// <see cref="TaskSchedulerException"/> ("An exception was thrown by a TaskScheduler"), so at the
/// blocking call itself this is its <see cref="Exception.InnerException"/>. Where the library
/// hands the failure on — out of <see cref="Asyncio.Run{T}(Func{CancellationToken, Task{T}})"/>,
/// <see cref="EventLoopThread.RunAsync{T}"/>, to Python awaiting a .NET Task — it is unwrapped, so
/// this is what the caller sees.
/// </remarks>
public sealed class LoopBlockedException : InvalidOperationException
{
    // Captured where the wait was refused: thrown from inside .NET's inline-wait machinery, the
    // exception's own trace would end at TaskScheduler.TryRunInline, far below the user's .Result.
    private readonly string _blockedAt;

    internal LoopBlockedException(string message) : base(message) =>
        _blockedAt = new System.Diagnostics.StackTrace(1, fNeedFileInfo: true).ToString().TrimEnd();

    /// <summary>The stack of the call that would have blocked the loop thread.</summary>
    public override string StackTrace => _blockedAt;

    /// <summary><paramref name="e"/>, or the LoopBlockedException inside it when .NET wrapped one in
    /// a TaskSchedulerException (directly, or through an await that rethrew it).</summary>
    internal static Exception Unwrap(Exception e) =>
        e is TaskSchedulerException { InnerException: LoopBlockedException blocked } ? blocked : e;
}
