using System.Globalization;

namespace AsyncioRaw.Tests.Hostile;

/// <summary>
/// Runs one attack of AsyncioRaw.Hostile in a child process, bounded in time, with the suite's
/// choice of Python passed on (so CI's per-version runs attack every version).
/// </summary>
internal static class Attacks
{
    internal sealed record Result(string Attack, int ExitCode, bool TimedOut, string Output, string Error)
    {
        /// <summary>Killed by a signal (SIGSEGV, SIGABRT, ...): .NET reports 128 + the signal.</summary>
        public bool Crashed => !TimedOut && ExitCode > 128;

        public string? Value(string key) =>
            Output.Split('\n').Select(l => l.TrimEnd('\r')).LastOrDefault(l => l.StartsWith(key + "=", StringComparison.Ordinal))?[(key.Length + 1)..];

        public double Number(string key) =>
            double.Parse(Value(key) ?? throw new AssertionException($"{Attack} printed no '{key}'.\n{this}"), CultureInfo.InvariantCulture);

        public override string ToString() =>
            $"attack {Attack}: exit {ExitCode}{(TimedOut ? " (timed out)" : "")}\n--- stdout ---\n{Output}\n--- stderr ---\n{Tail(Error)}";

        private static string Tail(string s) => s.Length <= 4000 ? s : "...\n" + s[^4000..];

        /// <summary>The attack ended on its own, with status 0: nothing crashed, hung, or escaped.</summary>
        public Result AssertSurvived()
        {
            Assert.That(TimedOut, Is.False, $"the process hung\n{this}");
            Assert.That(Crashed, Is.False, $"the process crashed\n{this}");
            Assert.That(ExitCode, Is.EqualTo(0), ToString());
            return this;
        }

        /// <summary>Asserts <c>key</c> was printed with a value starting with <paramref name="prefix"/>.</summary>
        public Result Expect(string key, string prefix)
        {
            Assert.That(Value(key), Does.StartWith(prefix), $"{key}\n{this}");
            return this;
        }
    }

    internal static Result Run(string attack, int timeoutSeconds = 60, IDictionary<string, string?>? environment = null, params string[] args)
    {
        // A crash should be a plain signal exit, fast, without a core dump or createdump.
        var child = ChildProcess.Run("AsyncioRaw.Hostile.dll", [attack, .. args], timeoutSeconds * 1000,
            static psi => psi.Environment["DOTNET_DbgEnableMiniDump"] = "0", environment);
        var result = new Result(attack, child.ExitCode, child.TimedOut, child.Output, child.Error);
        TestContext.Out.WriteLine(result.ToString());
        return result;
    }
}

/// <summary>The harness itself tells a clean run, a crash and a hang apart.</summary>
[TestFixture, Parallelizable(ParallelScope.Children)]
public class HarnessTests
{
    [Test]
    public void A_clean_attack_survives_and_reports() =>
        Attacks.Run("smoke.clean").AssertSurvived().Expect("result", "42");

    [Test]
    public void An_abort_is_seen_as_a_crash() =>
        Assert.That(Attacks.Run("smoke.abort").Crashed, Is.True);

    [Test]
    public void A_hang_is_seen_as_a_hang() =>
        Assert.That(Attacks.Run("smoke.hang", timeoutSeconds: 3).TimedOut, Is.True);
}
