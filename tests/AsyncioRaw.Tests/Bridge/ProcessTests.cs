using System.Diagnostics;

namespace AsyncioRaw.Tests.Bridge;

/// <summary>Behaviour that needs a process of its own: signals, and another Python with uvloop.</summary>
[TestFixture]
public class ProcessTests
{
    private static (int ExitCode, string Output) RunAndInterrupt(string scenario, int interrupts)
    {
        var psi = new ProcessStartInfo(Probe.DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "AsyncioRaw.Probe.dll"));
        psi.ArgumentList.Add(scenario);
        psi.Environment.Remove("ASYNCIORAW_PYTHON_LIBRARY");
        if (Environment.GetEnvironmentVariable("ASYNCIORAW_PYTHON_LIBRARY") is { } lib) psi.Environment["ASYNCIORAW_PYTHON_LIBRARY"] = lib;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var output = new System.Text.StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data == "ready") ready.TrySetResult();
        };
        p.BeginOutputReadLine();
        try
        {
            Assert.That(ready.Task.Wait(TimeSpan.FromSeconds(60)), "the probe never became ready");
            Thread.Sleep(200); // let the loop block in its selector
            for (int i = 0; i < interrupts; i++)
            {
                Assert.That(Kill(p.Id, 2), Is.EqualTo(0));
                Thread.Sleep(300);
            }
            Assert.That(p.WaitForExit(30_000), "the process did not exit after SIGINT");
            p.WaitForExit(); // drains the output events
        }
        catch (Exception) when (!p.HasExited)
        {
            p.Kill();
            throw;
        }
        finally
        {
            TestContext.Out.WriteLine(output.ToString() + stderr.Result);
        }
        lock (output) return (p.ExitCode, output.ToString() + stderr.Result);
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    [Test]
    public void Ctrl_C_cancels_the_NET_main_lets_it_clean_up_and_exits_like_Python()
    {
        var (code, output) = RunAndInterrupt("ctrl-c", interrupts: 1);
        Assert.That(output, Does.Contain("cleanup"));
        Assert.That(output, Does.Contain("KeyboardInterrupt"));
        Assert.That(output, Does.Not.Contain("returned normally"));
        Assert.That(code, Is.EqualTo(130));
    }

    [Test]
    public void A_second_Ctrl_C_stops_waiting_for_a_main_that_ignores_cancellation()
    {
        var (code, output) = RunAndInterrupt("ctrl-c-stubborn", interrupts: 2);
        Assert.That(output, Does.Contain("KeyboardInterrupt"));
        Assert.That(code, Is.EqualTo(130));
    }

    [Test]
    public void RunMain_returns_130_after_Ctrl_C_once_the_main_has_cleaned_up()
    {
        var (code, output) = RunAndInterrupt("run-main-ctrl-c", interrupts: 1);
        Assert.That(output, Does.Contain("cleanup"));
        Assert.That(output, Does.Contain("KeyboardInterrupt"));
        Assert.That(output, Does.Not.Contain("Unhandled exception"));
        Assert.That(code, Is.EqualTo(130));
    }

    [TestCase("ok", 0)]
    [TestCase("return-7", 7)]
    [TestCase("exit-none", 0)]
    [TestCase("exit-3", 3)]
    [TestCase("exit-message", 1)]
    [TestCase("python-error", 1)]
    [TestCase("dotnet-error", 1)]
    public void RunMain_returns_the_exit_status_a_Python_program_would(string ending, int expected)
    {
        var r = Probe.Run(null, "run-main", ending);
        TestContext.Out.WriteLine(r.Output + r.Error);
        Assert.That(r.ExitCode, Is.EqualTo(expected));
        Assert.That(r.Output, Does.Contain("printed by python"), "Python's buffered sys.stdout was not flushed");
        Assert.That(r.Error, Does.Not.Contain("Unhandled exception"));
        switch (ending)
        {
            case "exit-message":
                Assert.That(r.Error.Trim(), Is.EqualTo("a message for stderr"));
                break;
            case "python-error":
                Assert.That(r.Error, Does.StartWith("Traceback (most recent call last):"));
                Assert.That(r.Error, Does.Contain("run_main_probe.py").And.Contain("ValueError: boom from python"));
                break;
            case "dotnet-error":
                Assert.That(r.Error, Does.StartWith("System.InvalidOperationException: boom from .NET"));
                break;
            default:
                Assert.That(r.Error, Is.Empty);
                break;
        }
    }

    [Test]
    public void Uvloop_runs_the_bridge_on_Debians_Python()
    {
        const string debianPython = "/usr/bin/python3.11";
        if (!File.Exists(debianPython)) Assert.Ignore($"{debianPython} (Debian's Python) is not installed");
        var check = Process.Start(new ProcessStartInfo(debianPython, "-c \"import uvloop\"") { RedirectStandardError = true })!;
        check.WaitForExit();
        if (check.ExitCode != 0) Assert.Ignore("python3-uvloop is not installed for Debian's Python (scripts/setup.sh installs it)");
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON"] = debianPython }, "running-loop-type", "uvloop");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("loop"), Is.EqualTo("uvloop.Loop slept"));
    }
}
