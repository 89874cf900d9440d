namespace AsyncioRaw;

/// <summary>
/// Current on the loop thread while the loop runs our callbacks. An await that captured it resumes
/// on the loop thread, inline when the awaited work completes there (no extra loop iteration), and
/// through the loop's queue otherwise. Because it is not the default context, .NET does not inline
/// ConfigureAwait(false) continuations here: they go to the thread pool, leaving the loop free.
/// </summary>
internal sealed class LoopSynchronizationContext(EventLoop loop) : SynchronizationContext
{
    internal EventLoop Loop { get; } = loop;

    // A continuation is .NET code: once the loop is gone it resumes on the thread pool.
    public override void Post(SendOrPostCallback d, object? state) =>
        Loop.PostContinuation(static s => { var (d, st) = ((SendOrPostCallback, object?))s!; d(st); }, (d, state));

    public override void Send(SendOrPostCallback d, object? state)
    {
        if (Loop.IsOnLoopThread)
        {
            d(state);
            return;
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Loop.PostLoopWork(_ =>
        {
            try { d(state); done.TrySetResult(); }
            catch (Exception e) { done.TrySetException(e); }
        }, static (s, e) => ((TaskCompletionSource)s!).TrySetException(e), done);
        GilWait.Wait(done.Task);
    }

    public override SynchronizationContext CreateCopy() => this;
}
