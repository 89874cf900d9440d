namespace AsyncioRaw.Tests.Hostile;

/// <summary>
/// Issue 8, item 11: six threads for 20 s doing everything at random (loops created and disposed,
/// awaits both ways, random cancellation, cross-thread disposal, collections), then the interpreter
/// is finalized. Before the fixes, awaits on a loop disposed under them never ended (counted as
/// hangs). ASYNCIORAW_STRESS_SECONDS shortens it (CI's runs on every further Python use 8 s).
/// </summary>
[TestFixture, Parallelizable(ParallelScope.Children)]
public class StressTests
{
    [Test]
    public void Mixed_concurrent_use_ends_cleanly_and_finalizes()
    {
        var seconds = Environment.GetEnvironmentVariable("ASYNCIORAW_STRESS_SECONDS") is { Length: > 0 } s ? s : "20";
        var r = Attacks.Run("stress.mixed", timeoutSeconds: 120, args: [seconds, "6"]).AssertSurvived();
        Assert.Multiple(() =>
        {
            Assert.That(r.Number("unexpected"), Is.EqualTo(0), $"unexpected exception types\n{r}");
            Assert.That(r.Number("hangs"), Is.EqualTo(0), $"operations that never completed\n{r}");
            Assert.That(r.Value("shutdown"), Is.EqualTo("ok"), r.ToString());
            Assert.That(r.Value("finished"), Is.EqualTo("True"), r.ToString());
        });
    }
}
