using System.Diagnostics;

namespace AsyncioRaw.Tests;

/// <summary>Runs AsyncioRaw.Probe in a child process with a controlled environment.</summary>
internal static class Probe
{
    internal sealed record Result(int ExitCode, string Output, string Error)
    {
        public string? Value(string key) =>
            Output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(key + "="))?[(key.Length + 1)..];
    }

    internal static Result Run(IDictionary<string, string?>? environment, params string[] args)
    {
        environment ??= new Dictionary<string, string?>();
        var child = ChildProcess.Run("AsyncioRaw.Probe.dll", args, timeoutMs: 120_000, psi =>
        {
            // Start from a clean slate so the suite's own choice of Python does not leak in.
            psi.Environment.Remove("ASYNCIORAW_PYTHON_LIBRARY");
            psi.Environment.Remove("ASYNCIORAW_PYTHON");
            psi.Environment.Remove("LD_PRELOAD");
            // A test that does not choose how the child finds Python gets the suite's own library, so
            // CI's per-version runs (and a root without python3 on PATH) test that version there too.
            if (!environment.Keys.Any(DiscoveryKeys.Contains) && PythonLibrary.LoadedPath is { } suiteLibrary && suiteLibrary.Contains('/'))
                psi.Environment["ASYNCIORAW_PYTHON_LIBRARY"] = suiteLibrary;
        }, environment);
        if (child.TimedOut) Assert.Fail($"probe {string.Join(' ', args)} did not finish in 120 s");
        return new Result(child.ExitCode, child.Output, child.Error);
    }

    // What decides the child's libpython; a test that sets any of these chooses for itself.
    private static readonly string[] DiscoveryKeys = ["ASYNCIORAW_PYTHON_LIBRARY", "ASYNCIORAW_PYTHON", "LD_PRELOAD", "PATH"];

    internal static string DotnetHost() =>
        Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";

    internal static string PyenvLibrary(string minor)
    {
        var dir = Directory.Exists("/root/.pyenv/versions")
            ? Directory.GetDirectories("/root/.pyenv/versions", $"3.{minor}.*").OrderBy(d => d).LastOrDefault()
            : null;
        var lib = dir is null ? null : Path.Combine(dir, "lib", $"libpython3.{minor}.so.1.0");
        if (lib is null || !File.Exists(lib)) Assert.Ignore($"CPython 3.{minor} is not installed under /root/.pyenv/versions");
        return lib!;
    }

    internal static string PyenvExecutable(string minor) =>
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(PyenvLibrary(minor)))!, "bin", $"python3.{minor}");
}

/// <summary>One of the suite's own programs (an assembly beside the tests) run with <c>dotnet exec</c>
/// in a child process, bounded in time: killed with its children when it runs over.</summary>
internal static class ChildProcess
{
    internal readonly record struct Outcome(int ExitCode, bool TimedOut, string Output, string Error);

    /// <param name="configure">Adjusts the start info before <paramref name="environment"/> is applied
    /// (a null value there removes the variable).</param>
    internal static Outcome Run(string assembly, IEnumerable<string> args, int timeoutMs,
        Action<ProcessStartInfo>? configure = null, IDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(Probe.DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, assembly));
        foreach (var a in args) psi.ArgumentList.Add(a);
        configure?.Invoke(psi);
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        bool timedOut = !p.WaitForExit(timeoutMs);
        if (timedOut)
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        return new Outcome(p.ExitCode, timedOut, stdout.Result, stderr.Result);
    }
}
