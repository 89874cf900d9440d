namespace AsyncioRaw.Asyncio;

/// <summary>
/// Runs the tasks that stand for Python awaitables: each is started on this scheduler at once but
/// executed only when its Python future completes. Its one other job is refusing to deadlock:
/// .Wait() and .Result first try to run the task inline, which lands in
/// <see cref="TryExecuteTaskInline"/>; on the loop thread, with the future still pending, blocking
/// would stop the very loop that has to finish it, so that throws instead.
/// </summary>
internal sealed class LoopTaskScheduler(EventLoop loop) : TaskScheduler
{
    protected override void QueueTask(Task task)
    {
        // Nothing to do: the future's done callback executes the task (see Execute).
    }

    internal bool Execute(Task task) => TryExecuteTask(task);

    // Cancelling a task's token only completes it as Canceled at once if its scheduler lets go of
    // it; nothing is really queued here, so always let go (a later Execute then does nothing).
    protected override bool TryDequeue(Task task) => true;

    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued)
    {
        if (task.AsyncState is IAwaitOperation { IsPythonDone: false } && loop.IsOnLoopThread)
            throw new InvalidOperationException(
                "Blocking on a Python awaitable from its event loop's thread would deadlock: the loop cannot " +
                "run while this thread waits for it. Use 'await' instead of .Result/.Wait().");
        return false;
    }

    protected override IEnumerable<Task> GetScheduledTasks() => [];
}

internal interface IAwaitOperation
{
    bool IsPythonDone { get; }
}
