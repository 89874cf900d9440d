using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// Finds and loads libpython, once per process. Order: a path given in code
/// (<see cref="Use"/>), <c>ASYNCIORAW_PYTHON_LIBRARY</c> (a library file),
/// <c>ASYNCIORAW_PYTHON</c> (a Python executable to ask), <c>python3</c> on PATH asked through
/// <c>sysconfig</c>, then well-known system locations. If the process already contains libpython
/// (we were loaded by Python), its symbols are used and nothing is loaded.
/// </summary>
public static unsafe class PythonLibrary
{
    public const string LibraryVariable = "ASYNCIORAW_PYTHON_LIBRARY";
    public const string ExecutableVariable = "ASYNCIORAW_PYTHON";
    public static readonly Version MinimumVersion = new(3, 9);

    private static readonly object s_lock = new();
    private static string? s_requestedPath;
    private static nint s_handle;

    /// <summary>The file that was loaded, or "(process)" when Python was already in the process.</summary>
    public static string? LoadedPath { get; private set; }

    /// <summary>How the library was found: which rule matched.</summary>
    public static string? FoundBy { get; private set; }

    /// <summary>major.minor.micro of the loaded library.</summary>
    public static Version Version { get; private set; } = new(0, 0);

    /// <summary>The full <c>Py_GetVersion()</c> string.</summary>
    public static string? VersionString { get; private set; }

    public static bool IsLoaded => s_handle != 0;

    // Read on hot paths to pick version-specific entry points.
    internal static int Minor;

    // The resolver must be in place before the first P/Invoke of this assembly, whichever it is.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RegisterResolver()
    {
        NativeLibrary.SetDllImportResolver(typeof(PythonLibrary).Assembly, static (name, _, _) =>
            name == Libraries.Python ? Load() : 0);
    }

    /// <summary>Use this library file. Must be called before Python is first used.</summary>
    public static void Use(string libraryPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(libraryPath);
        lock (s_lock)
        {
            if (s_handle != 0)
            {
                if (LoadedPath == libraryPath) return;
                throw new InvalidOperationException(
                    $"libpython is already loaded from '{LoadedPath}'; PythonLibrary.Use must be called before Python is first used.");
            }
            s_requestedPath = libraryPath;
        }
    }

    /// <summary>Finds and loads libpython (idempotent) and returns its handle.</summary>
    public static nint Load()
    {
        if (s_handle != 0) return s_handle;
        lock (s_lock)
        {
            if (s_handle != 0) return s_handle;
            var attempts = new List<string>();
            var (handle, path, rule) = Find(attempts);
            var version = ReadVersion(handle, out var full);
            if (version < MinimumVersion)
                throw new PythonLibraryException(
                    $"'{path}' is Python {version}, found by {rule}; AsyncioRaw needs Python {MinimumVersion} or later. " +
                    $"Point {LibraryVariable} at a newer libpython, or {ExecutableVariable} at a newer python.", attempts);
            Version = version;
            VersionString = full;
            Minor = version.Major == 3 ? version.Minor : 99;
            LoadedPath = path;
            FoundBy = rule;
            CPython.LoadExports(handle);
            s_handle = handle;
            return handle;
        }
    }

    private static (nint Handle, string Path, string Rule) Find(List<string> attempts)
    {
        // Already in the process (we are hosted by python, or the host loaded it globally)?
        // Loading a second libpython beside it would give two interpreters' worth of globals.
        nint self = LibC.dlopen(null, LibC.RTLD_NOW);
        if (self != 0 && Symbol(self, "Py_GetVersion") != null && Symbol(self, "Py_IsInitialized") != null)
            return (self, "(process)", "the symbols already present in the process");
        attempts.Add("the process itself: no libpython symbols loaded");

        if (s_requestedPath is { } requested)
            return (LoadOrThrow(requested, "PythonLibrary.Use", attempts), requested, "PythonLibrary.Use");

        if (Environment.GetEnvironmentVariable(LibraryVariable) is { Length: > 0 } fromEnv)
            return (LoadOrThrow(fromEnv, LibraryVariable, attempts), fromEnv, LibraryVariable);

        if (Environment.GetEnvironmentVariable(ExecutableVariable) is { Length: > 0 } exe)
        {
            foreach (var candidate in AskPython(exe, attempts))
                if (TryLoad(candidate, attempts) is var h and not 0)
                    return (h, candidate, $"{ExecutableVariable}={exe}");
            throw NotFound($"{ExecutableVariable} names '{exe}', but no shared libpython was found for it.", attempts);
        }

        foreach (var candidate in AskPython("python3", attempts))
            if (TryLoad(candidate, attempts) is var h and not 0)
                return (h, candidate, "python3 on PATH (sysconfig)");

        foreach (var candidate in WellKnownLocations())
            if (TryLoad(candidate, attempts) is var h and not 0)
                return (h, candidate, "a well-known system location");

        throw NotFound("No libpython 3.9 or later was found.", attempts);
    }

    private static PythonLibraryException NotFound(string what, List<string> attempts) => new(
        what + $" Install a CPython with a shared library (e.g. Debian's libpython3.11, or pyenv with " +
        $"PYTHON_CONFIGURE_OPTS=--enable-shared), or set {LibraryVariable} to the libpython file, " +
        $"or {ExecutableVariable} to a python executable, or call PythonLibrary.Use(path).", attempts);

    private static nint LoadOrThrow(string path, string rule, List<string> attempts) =>
        TryLoad(path, attempts) is var h and not 0 ? h : throw NotFound($"{rule} names '{path}', which could not be loaded.", attempts);

    private static nint TryLoad(string path, List<string> attempts)
    {
        if (path.Contains('/') && !File.Exists(path))
        {
            attempts.Add($"{path}: no such file");
            return 0;
        }
        nint h;
        fixed (byte* p = Utf8Z(path))
            h = LibC.dlopen(p, LibC.RTLD_NOW | LibC.RTLD_GLOBAL);
        if (h == 0)
        {
            attempts.Add($"{path}: {Marshal.PtrToStringUTF8((nint)LibC.dlerror())}");
            return 0;
        }
        if (Symbol(h, "Py_GetVersion") == null)
        {
            attempts.Add($"{path}: loaded, but it is not libpython (no Py_GetVersion)");
            return 0;
        }
        return h;
    }

    private static IEnumerable<string> AskPython(string executable, List<string> attempts)
    {
        const string script =
            "import os, sys, sysconfig\n" +
            "v = sysconfig.get_config_var\n" +
            "names = [n for n in (v('INSTSONAME'), v('LDLIBRARY')) if n and not n.endswith('.a')]\n" +
            "dirs = [d for d in (v('LIBDIR'), os.path.join(v('LIBDIR') or '', v('MULTIARCH') or ''), v('LIBPL'), os.path.join(sys.base_prefix, 'lib')) if d]\n" +
            "seen = set()\n" +
            "for d in dirs:\n" +
            "    for n in names:\n" +
            "        p = os.path.join(d, n)\n" +
            "        if p not in seen:\n" +
            "            seen.add(p); print(p)\n";
        var psi = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        var found = new List<string>();
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(20_000))
            {
                try { p.Kill(); } catch (InvalidOperationException) { }
                attempts.Add($"{executable}: did not answer within 20 s");
                return found;
            }
            if (p.ExitCode != 0)
            {
                attempts.Add($"{executable}: exited with {p.ExitCode}: {stderr.Result.Trim()}");
                return found;
            }
            found.AddRange(stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            if (found.Count == 0) attempts.Add($"{executable}: sysconfig names no shared library (a static-only build)");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            attempts.Add($"{executable}: could not be run ({e.Message})");
        }
        return found;
    }

    private static IEnumerable<string> WellKnownLocations()
    {
        string[] dirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/local/lib", "/usr/lib"];
        for (int minor = 13; minor >= 9; minor--)
            foreach (var dir in dirs)
                yield return $"{dir}/libpython3.{minor}.so.1.0";
    }

    private static Version ReadVersion(nint handle, out string full)
    {
        var getVersion = (delegate* unmanaged<byte*>)Symbol(handle, "Py_GetVersion");
        full = Marshal.PtrToStringUTF8((nint)getVersion()) ?? "";
        var digits = full.Split(' ', 2)[0];
        int end = 0;
        while (end < digits.Length && (char.IsDigit(digits[end]) || digits[end] == '.')) end++;
        return Version.TryParse(digits[..end], out var v) ? v : new Version(0, 0);
    }

    internal static void* Symbol(nint handle, string name)
    {
        fixed (byte* p = Utf8Z(name))
            return LibC.dlsym(handle, p);
    }

    internal static byte[] Utf8Z(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }
}

/// <summary>libpython could not be found, loaded, or is too old. <see cref="Attempts"/> lists every place tried.</summary>
public sealed class PythonLibraryException(string message, IReadOnlyList<string> attempts)
    : Exception(attempts.Count == 0 ? message : message + Environment.NewLine + "Tried:" + Environment.NewLine + "  " + string.Join(Environment.NewLine + "  ", attempts))
{
    public IReadOnlyList<string> Attempts { get; } = attempts;
}
