namespace AsyncioRaw.Tests.Hostile;

/// <summary>
/// Issue 8, item 11: six threads for 20 s doing everything at random (loops created and disposed,
/// awaits both ways, random cancellation, cross-thread disposal, collections), then the interpreter
/// is finalized. Today: awaits on a loop disposed under them never end (counted as hangs).
/// </summary>
[TestFixture, Parallelizable(ParallelScope.Children)]
public class StressTests
{
    [Test]
    public void Mixed_concurrent_use_ends_cleanly_and_finalizes()
    {
        var r = Attacks.Run("stress.mixed", timeoutSeconds: 120, args: ["20", "6"]).AssertSurvived();
        Assert.Multiple(() =>
        {
            Assert.That(r.Number("unexpected"), Is.EqualTo(0), $"unexpected exception types\n{r}");
            Assert.That(r.Number("hangs"), Is.EqualTo(0), $"operations that never completed\n{r}");
            Assert.That(r.Value("shutdown"), Is.EqualTo("ok"), r.ToString());
            Assert.That(r.Value("finished"), Is.EqualTo("True"), r.ToString());
        });
    }
}
