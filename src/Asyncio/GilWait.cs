namespace AsyncioRaw.Asyncio;

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
            throw new InvalidOperationException(
                "Waiting on the event loop's own thread for work that loop must do would deadlock: the loop cannot run while its thread waits.");
        if (Gil.IsHeld)
        {
            using (Gil.AllowThreads())
                ((IAsyncResult)task).AsyncWaitHandle.WaitOne();
        }
        task.GetAwaiter().GetResult();
    }

    internal static T Wait<T>(Task<T> task, EventLoop? ownLoop = null)
    {
        Wait((Task)task, ownLoop);
        return task.Result;
    }
}
