using AsyncioRaw.Tests.Hostile;

namespace AsyncioRaw.Tests.Diagnostics;

/// <summary>
/// Issue 12: failures nobody awaits reach <see cref="AsyncioRawDiagnostics.UnobservedError"/>, or
/// stderr without a subscriber. The failure is real: an event loop whose asyncio shutdown step
/// raises while its EventLoopThread is disposed. Non-parallel: the event and Console.Error are
/// process-wide.
/// </summary>
[TestFixture, NonParallelizable]
public class UnobservedErrorTests
{
    // As in tests/AsyncioRaw.Hostile/DiagnosticsAttacks.cs.
    private const string FailingShutdownLoop = """
        import asyncio
        class FailingShutdownLoop(asyncio.SelectorEventLoop):
            async def shutdown_asyncgens(self):
                raise RuntimeError('shutdown boom')
        """;

    private static PyObject FailingShutdownLoopType()
    {
        using var g = Py.Run(FailingShutdownLoop);
        return g["FailingShutdownLoop"];
    }

    private sealed record Seen(UnobservedErrorEventArgs Args, object? Sender, int ThreadId, bool GilHeld, long FromPython, bool WaitedForAGilHolder);

    [Test]
    public async Task The_event_gets_the_failure_on_a_thread_that_may_block_and_call_into_Python()
    {
        var seen = new TaskCompletionSource<Seen>(TaskCreationOptions.RunContinuationsAsynchronously);
        EventHandler<UnobservedErrorEventArgs> handler = (sender, e) =>
        {
            try
            {
                bool held = Gil.IsHeld;
                long fromPython;
                using (Gil.Acquire())
                using (var r = Py.Eval("6 * 7")) fromPython = r.As<long>();
                // Blocks on another thread that needs the GIL: a deadlock if the event were raised
                // on the failing thread, which holds it.
                bool waited = Task.Run(() => { using (Gil.Acquire()) return true; }).Wait(TimeSpan.FromSeconds(10));
                seen.TrySetResult(new Seen(e, sender, Environment.CurrentManagedThreadId, held, fromPython, waited));
            }
            catch (Exception failure) { seen.TrySetException(failure); }
        };
        AsyncioRawDiagnostics.UnobservedError += handler;
        try
        {
            using var loopType = FailingShutdownLoopType();
            var host = new EventLoopThread(loopFactory: () => loopType.Call());
            int loopThread = host.Loop.ThreadId;
            await host.DisposeAsync();
            var s = await seen.Task.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.That(s.Args.Operation, Is.EqualTo("shutting the event loop down"));
            Assert.That(s.Args.Exception, Is.InstanceOf<PythonException>().With.Message.Contains("shutdown boom"));
            Assert.That(s.Sender, Is.Null);
            Assert.That(s.ThreadId, Is.Not.EqualTo(loopThread), "not raised on the failing loop thread");
            Assert.That(s.GilHeld, Is.False, "the handler runs without the GIL");
            Assert.That(s.FromPython, Is.EqualTo(42));
            Assert.That(s.WaitedForAGilHolder, Is.True);
        }
        finally { AsyncioRawDiagnostics.UnobservedError -= handler; }
    }

    [Test]
    public async Task Without_a_subscriber_the_failure_goes_to_stderr_as_before()
    {
        var stderr = Console.Error;
        var captured = new StringWriter();
        Console.SetError(TextWriter.Synchronized(captured));
        try
        {
            using var loopType = FailingShutdownLoopType();
            await new EventLoopThread(loopFactory: () => loopType.Call()).DisposeAsync();
        }
        finally { Console.SetError(stderr); }
        Assert.That(captured.ToString(), Does.Contain("AsyncioRaw: unexpected failure while shutting the event loop down").And.Contain("shutdown boom"));
    }

    [Test]
    public void A_subscriber_that_throws_ends_nothing_and_the_others_still_hear()
    {
        var r = Attacks.Run("diagnostics.throwing_subscriber", timeoutSeconds: 60).AssertSurvived();
        r.Expect("received", "shutting the event loop down").Expect("alive", "yes");
        Assert.That(r.Error, Does.Contain("an UnobservedError subscriber threw").And.Contain("subscriber boom").And.Contain("and again"), r.ToString());
        Assert.That(r.Error, Does.Contain("AsyncioRaw: unexpected failure while shutting the event loop down"), "the failure itself is on stderr too");
    }
}
