namespace AsyncioRaw.Asyncio;

/// <summary>
/// Current on the loop thread while the loop runs our callbacks. An await that captured it resumes
/// on the loop thread, inline when the awaited work completes there (no extra loop iteration), and
/// through the loop's queue otherwise. Because it is not the default context, .NET does not inline
/// ConfigureAwait(false) continuations here: they go to the thread pool, leaving the loop free.
/// </summary>
internal sealed class LoopSynchronizationContext(EventLoop loop) : SynchronizationContext
{
    internal EventLoop Loop { get; } = loop;

    public override void Post(SendOrPostCallback d, object? state)
    {
        if (Loop.IsClosed)
        {
            // The loop is gone; resuming on the pool beats never resuming.
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.d(s.state), (d, state), preferLocal: false);
            return;
        }
        Loop.Post(static s => { var (d, st) = ((SendOrPostCallback, object?))s!; d(st); }, (d, state));
    }

    public override void Send(SendOrPostCallback d, object? state)
    {
        if (Loop.IsOnLoopThread)
        {
            d(state);
            return;
        }
        using var done = new ManualResetEventSlim();
        Exception? error = null;
        Loop.Post(_ =>
        {
            try { d(state); }
            catch (Exception e) { error = e; }
            finally { done.Set(); }
        });
        done.Wait();
        if (error != null) throw new AggregateException(error);
    }

    public override SynchronizationContext CreateCopy() => this;
}
