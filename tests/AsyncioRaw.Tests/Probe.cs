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
        var dll = Path.Combine(AppContext.BaseDirectory, "AsyncioRaw.Probe.dll");
        var psi = new ProcessStartInfo(DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Start from a clean slate so the suite's own choice of Python does not leak in.
        psi.Environment.Remove("ASYNCIORAW_PYTHON_LIBRARY");
        psi.Environment.Remove("ASYNCIORAW_PYTHON");
        psi.Environment.Remove("LD_PRELOAD");
        // A test that does not choose how the child finds Python gets the suite's own library, so
        // CI's per-version runs (and a root without python3 on PATH) test that version there too.
        if (!(environment ?? new Dictionary<string, string?>()).Keys.Any(DiscoveryKeys.Contains) &&
            PythonLibrary.LoadedPath is { } suiteLibrary && suiteLibrary.Contains('/'))
            psi.Environment["ASYNCIORAW_PYTHON_LIBRARY"] = suiteLibrary;
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"probe {string.Join(' ', args)} did not finish in 120 s");
        }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
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
