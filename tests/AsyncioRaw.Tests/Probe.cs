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
