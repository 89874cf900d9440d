namespace AsyncioRaw.Tests;

[TestFixture]
public class LifecycleTests
{
    [Test]
    public void Initialize_is_idempotent_and_thread_safe()
    {
        Parallel.For(0, 8, _ => PythonRuntime.Initialize(installSignalHandlers: false));
        Assert.That(PythonRuntime.IsInitialized);
    }

    [Test]
    public void Misuse_before_and_after_the_interpreter_lives_is_a_clear_exception()
    {
        var r = Probe.Run(null, "misuse");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        foreach (var name in new[] { "acquire-before-init", "import-before-init", "allow-threads-without-gil",
                     "shutdown-holding-gil", "shutdown-other-thread", "acquire-after-finalize", "reinitialize" })
            Assert.That(r.Output, Does.Contain($"{name}: InvalidOperationException"), r.Output);
        Assert.That(r.Output, Does.Contain("done"));
    }

    [Test]
    public void Finalize_while_handles_are_alive_on_other_threads_does_not_crash()
    {
        var r = Probe.Run(null, "finalize");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Output, Does.Contain("finalized=True"));
        Assert.That(r.Output, Does.Contain("calls-before=True errors-after=True"));
        Assert.That(r.Output, Does.Contain("done"));
    }
}
