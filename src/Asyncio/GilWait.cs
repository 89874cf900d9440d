namespace AsyncioRaw;

/// <summary>
/// The one way this library blocks a thread on work another thread must do. A thread that holds
/// the GIL gives it up for the wait (Py_BEGIN_ALLOW_THREADS), because the work it waits for may
/// need the GIL (a loop thread does); a loop thread never waits for its own loop.
/// </summary>
internal static class GilWait
{
    internal static void Wait(Task task, EventLoop? ownLoop = null)
    {
        if (task.IsCompleted)
        {
            task.GetAwaiter().GetResult();
            return;
        }
        if (ownLoop is { IsOnLoopThread: true })
            throw new LoopBlockedException(
                "Waiting on the event loop's own thread for work that loop must do would deadlock: the loop cannot run while its thread waits.");
        UntilCompleted(task);
        task.GetAwaiter().GetResult();
    }

    /// <summary>Blocks until <paramref name="task"/> has completed (however it ended), with the
    /// GIL released for the wait if this thread holds it.</summary>
    internal static void UntilCompleted(Task task)
    {
        if (task.IsCompleted) return;
        if (!Gil.IsHeld)
        {
            ((IAsyncResult)task).AsyncWaitHandle.WaitOne();
            return;
        }
        using (Gil.AllowThreads())
            ((IAsyncResult)task).AsyncWaitHandle.WaitOne();
    }

    internal static T Wait<T>(Task<T> task, EventLoop? ownLoop = null)
    {
        Wait((Task)task, ownLoop);
        return task.Result;
    }
}
