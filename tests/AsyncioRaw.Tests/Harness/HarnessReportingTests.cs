using NUnit.Framework.Api;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace AsyncioRaw.Tests.Harness;

/// <summary>Runs the deliberately failing fixtures of AsyncioRaw.Testing.Samples through NUnit's
/// own runner and checks how each one is reported.</summary>
[TestFixture]
public class HarnessReportingTests
{
    private static Dictionary<string, ITestResult>? s_results;

    private static Dictionary<string, ITestResult> Results()
    {
        if (s_results != null) return s_results;
        var runner = new NUnitTestAssemblyRunner(new DefaultTestAssemblyBuilder());
        var assembly = typeof(AsyncioRaw.Testing.Samples.FailingSamples).Assembly;
        runner.Load(assembly, new Dictionary<string, object>());
        var result = runner.Run(TestListener.NULL, TestFilter.Empty);
        var all = new Dictionary<string, ITestResult>();
        void Walk(ITestResult r)
        {
            if (!r.HasChildren) all[r.Name] = r;
            foreach (var c in r.Children) Walk(c);
        }
        Walk(result);
        return s_results = all;
    }

    [Test]
    public void A_Python_exception_fails_with_type_message_and_traceback()
    {
        var r = Results()["Python_exception_fails_the_test"];
        Assert.That(r.ResultState.Status, Is.EqualTo(TestStatus.Failed));
        Assert.That(r.Message, Does.Contain("builtins.KeyError: 'missing key'"));
        Assert.That(r.Message, Does.Contain("Traceback (most recent call last):").And.Contain("failing_samples.py").And.Contain("in boom"));
    }

    [Test]
    public void A_pending_Python_task_fails_and_is_named()
    {
        var r = Results()["Pending_task_fails_the_test"];
        Assert.That(r.ResultState.Status, Is.EqualTo(TestStatus.Failed));
        Assert.That(r.Message, Does.Contain("Python task left pending").And.Contain("forever"));
    }

    [Test]
    public void A_never_retrieved_exception_fails_and_is_named()
    {
        var r = Results()["Never_retrieved_exception_fails_the_test"];
        Assert.That(r.ResultState.Status, Is.EqualTo(TestStatus.Failed));
        Assert.That(r.Message, Does.Contain("never retrieved").And.Contain("nobody looked"));
    }

    [Test]
    public void Assertions_and_passes_are_reported_as_usual()
    {
        Assert.That(Results()["Assertion_failure_is_an_ordinary_failure"].ResultState.Status, Is.EqualTo(TestStatus.Failed));
        Assert.That(Results()["Assertion_failure_is_an_ordinary_failure"].Message, Does.Contain("Expected: 2"));
        Assert.That(Results()["Passing_test_passes"].ResultState.Status, Is.EqualTo(TestStatus.Passed));
    }
}
