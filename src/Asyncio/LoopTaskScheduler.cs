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
            throw new InvalidOperationException(
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
        else SetException(task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerExceptions[0] : task.Exception);
    }
}
