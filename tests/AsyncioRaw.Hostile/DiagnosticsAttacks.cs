using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>Attacks on the diagnostics surface (issue 12): a subscriber of
/// AsyncioRawDiagnostics.UnobservedError that throws must not end the process.</summary>
internal static class DiagnosticsAttacks
{
    /// <summary>A loop whose asyncio shutdown step raises: EventLoopThread's disposal reports it as
    /// an unobserved failure ("shutting the event loop down"), since nobody awaits the shutdown.</summary>
    internal const string FailingShutdownLoop = """
        import asyncio
        class FailingShutdownLoop(asyncio.SelectorEventLoop):
            async def shutdown_asyncgens(self):
                raise RuntimeError('shutdown boom')
        """;

    [Attack("diagnostics.throwing_subscriber")]
    private static async Task ThrowingSubscriber()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        AsyncioRawDiagnostics.UnobservedError += (_, _) => throw new InvalidOperationException("subscriber boom");
        AsyncioRawDiagnostics.UnobservedError += (_, e) => received.TrySetResult(e.Operation);
        using var loopType = Outcome.Define(FailingShutdownLoop, "FailingShutdownLoop");
        await new EventLoopThread(loopFactory: () => loopType.Call()).DisposeAsync();
        Outcome.Report("received", Outcome.Within(received.Task, 10_000, "the second subscriber"));
        AsyncioRawDiagnostics.UnobservedError += (_, _) => throw new InvalidOperationException("and again");
        await new EventLoopThread(loopFactory: () => loopType.Call()).DisposeAsync();
        Thread.Sleep(500); // a pool thread that let the exception escape would have ended the process by now
        Outcome.Report("alive", "yes");
    }
}
