namespace AsyncioRaw.Tests.Hostile;

/// <summary>
/// Issue 8, what the bridge exposes to Python: each test runs one attack of
/// tests/AsyncioRaw.Hostile/BridgeAttacks.cs in a child process and asserts the good outcome.
/// </summary>
[TestFixture, Parallelizable(ParallelScope.Children)]
public class BridgeAttackTests
{
    // 3. run_and_report's report callable, found in a coroutine frame's locals and called with
    // bad arguments: a Python exception, never a crash or a hijacked result.
    [TestCase("no_args")]
    [TestCase("one_arg")]
    [TestCase("two_args")]
    [TestCase("string_key")]
    [TestCase("huge_key")]
    [TestCase("unknown_key")]
    [TestCase("not_exception")]
    [TestCase("keywords")]
    public void The_report_callable_checks_its_arguments(string variant) =>
        Assert.That(Attacks.Run($"bridge.report.{variant}", timeoutSeconds: 20).AssertSurvived().Value("result"),
            Does.Match("^ok: raised (TypeError|ValueError|OverflowError|KeyError)$"));

    [Test]
    public void The_done_callback_of_a_dotnet_await_checks_its_argument()
    {
        var r = Attacks.Run("bridge.callback.await_done", timeoutSeconds: 20).AssertSurvived();
        Assert.That(r.Value("python"), Does.Contain("str:TypeError").And.Contain("none:TypeError"), r.ToString());
        r.Expect("awaited", "ok: 5");
    }

    [Test]
    public void The_done_callback_of_a_python_await_checks_its_argument()
    {
        var r = Attacks.Run("bridge.callback.completion_done", timeoutSeconds: 20).AssertSurvived();
        Assert.That(r.Value("python"), Does.Contain("str:TypeError").And.Contain("awaited:7"), r.ToString());
        r.Expect("dotnet_work_cancelled", "False");
    }

    [Test]
    public void The_weakref_callback_of_a_python_await_checks_its_argument()
    {
        var r = Attacks.Run("bridge.callback.completion_weakref", timeoutSeconds: 20).AssertSurvived();
        Assert.That(r.Value("python"), Does.Contain("str:TypeError").And.Contain("awaited:7"), r.ToString());
        r.Expect("dotnet_work_cancelled", "False");
    }

    [Test]
    public void The_weakref_callback_of_an_adopted_loop_checks_its_argument() =>
        Assert.That(Attacks.Run("bridge.callback.loop_weakref", timeoutSeconds: 30).AssertSurvived().Value("python"),
            Does.Contain("str:TypeError").And.Contain("again:2,again:2,again:2"));

    [Test]
    public void The_drain_callback_never_runs_work_off_the_loop_thread()
    {
        var r = Attacks.Run("bridge.callback.drain", timeoutSeconds: 20).AssertSurvived();
        r.Expect("drain_with_arg", "PythonException: TypeError");
        Assert.That(r.Number("ran"), Is.GreaterThan(0), r.ToString());
        Assert.That(r.Number("ran_off_loop_thread"), Is.EqualTo(0), r.ToString());
    }

    // 7. A future whose cancelled()/done()/result() raises (today: cancelled() hangs the await).
    [Test]
    public void A_future_whose_methods_raise_faults_the_task()
    {
        var r = Attacks.Run("bridge.future_methods_raise", timeoutSeconds: 30).AssertSurvived();
        Assert.Multiple(() =>
        {
            Assert.That(r.Value("BadCancelled"), Does.Contain("cancelled() boom"), r.ToString());
            Assert.That(r.Value("BadDone"), Does.Contain("done() boom"), r.ToString());
            Assert.That(r.Value("BadResult"), Does.Contain("result() boom"), r.ToString());
        });
    }

    // 9. Leaks. PyFunction.Create + Dispose: before the fix ~230 B/op of RSS (~155 native) never
    // freed (a PyMethodDef and its strings per function). The process's own growth while it warms
    // up (JIT tiers, allocator arenas) is a fixed 2-3 MB that does not scale with the count: over
    // 200,000 operations after 50,000 of warm-up it is ~14 B/op, and 32 B/op still catches a leak
    // a fifth the size of the one fixed.
    [Test]
    public void PyFunction_create_and_dispose_leaks_nothing()
    {
        var r = Attacks.Run("leak.pyfunction", timeoutSeconds: 60, args: ["50000", "200000"]).AssertSurvived();
        Assert.Multiple(() =>
        {
            Assert.That(r.Number("pyfunction.objects_per_op"), Is.LessThan(0.01), r.ToString());
            Assert.That(r.Number("pyfunction.blocks_per_op"), Is.LessThan(0.01), r.ToString());
            Assert.That(r.Number("pyfunction.heap_per_op"), Is.LessThan(64), r.ToString());
            Assert.That(r.Number("pyfunction.native_per_op"), Is.LessThan(32), r.ToString());
        });
    }

    /// <summary>Python and managed figures only: the native part of a stream's cost is the two
    /// PyFunctions it makes (measured above); across threads the native figure's noise at this
    /// count (hundreds of B/op, see leak.roundtrip) is larger than that leak.</summary>
    [Test]
    public void Async_streams_consumed_or_closed_leak_nothing()
    {
        var r = Attacks.Run("leak.async_stream", timeoutSeconds: 60).AssertSurvived();
        Assert.Multiple(() =>
        {
            foreach (var name in new[] { "consumed", "closed" })
            {
                Assert.That(r.Number($"{name}.objects_per_op"), Is.LessThan(0.01), r.ToString());
                Assert.That(r.Number($"{name}.blocks_per_op"), Is.LessThan(0.01), r.ToString());
                Assert.That(r.Number($"{name}.heap_per_op"), Is.LessThan(64), r.ToString());
            }
        });
    }

    [Test]
    public void Round_trips_leak_nothing()
    {
        var r = Attacks.Run("leak.roundtrip", timeoutSeconds: 60).AssertSurvived();
        Assert.Multiple(() =>
        {
            foreach (var name in new[] { "to_task", "from_task" })
            {
                Assert.That(r.Number($"{name}.objects_per_op"), Is.LessThan(0.01), r.ToString());
                Assert.That(r.Number($"{name}.blocks_per_op"), Is.LessThan(0.01), r.ToString());
                Assert.That(r.Number($"{name}.heap_per_op"), Is.LessThan(64), r.ToString());
            }
        });
    }
}
