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
    /// <summary>The environment variable naming the libpython file to load (takes precedence over
    /// <see cref="ExecutableVariable"/> and discovery).</summary>
    public const string LibraryVariable = "ASYNCIORAW_PYTHON_LIBRARY";
    /// <summary>The environment variable naming a Python executable to ask, through
    /// <c>sysconfig</c>, for its shared libpython.</summary>
    public const string ExecutableVariable = "ASYNCIORAW_PYTHON";
    /// <summary>The oldest CPython supported; older ones are refused with a <see
    /// cref="PythonLibraryException"/>.</summary>
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

    /// <summary>True once libpython is loaded into this process (by first use of Python or by <see
    /// cref="PythonRuntime.Initialize"/>).</summary>
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
    internal static nint Load()
    {
        if (s_handle != 0) return s_handle;
        lock (s_lock)
        {
            if (s_handle != 0) return s_handle;
            var attempts = new List<string>();
            var (handle, path, rule) = Find(attempts);
            var version = ReadVersion(handle, out var full);
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
        // Only the global scope is searched, so a library we loaded and refused (loaded locally,
        // see TryLoad) is never taken for the process's own.
        nint self = LibC.dlopen(null, LibC.RTLD_NOW);
        if (self != 0 && Symbol(self, "Py_GetVersion") != null && Symbol(self, "Py_IsInitialized") != null)
        {
            const string processRule = "the symbols already present in the process";
            if (Refusal(self) is { } refusal)
                throw new PythonLibraryException(Refused("(process)", refusal, processRule), attempts);
            return (self, "(process)", processRule);
        }
        attempts.Add("the process itself: no libpython symbols loaded");

        if (s_requestedPath is { } requested)
            return (LoadOrThrow(requested, "PythonLibrary.Use", attempts), requested, "PythonLibrary.Use");

        if (Environment.GetEnvironmentVariable(LibraryVariable) is { Length: > 0 } fromEnv)
            return (LoadOrThrow(fromEnv, LibraryVariable, attempts), fromEnv, LibraryVariable);

        if (Environment.GetEnvironmentVariable(ExecutableVariable) is { Length: > 0 } exe)
        {
            foreach (var candidate in AskPython(exe, attempts))
                if (TryAccept(candidate, attempts) is var h and not 0)
                    return (h, candidate, $"{ExecutableVariable}={exe}");
            throw NotFound($"{ExecutableVariable} names '{exe}', but no usable shared libpython was found for it.", attempts);
        }

        foreach (var candidate in AskPython("python3", attempts))
            if (TryAccept(candidate, attempts) is var h and not 0)
                return (h, candidate, "python3 on PATH (sysconfig)");

        foreach (var candidate in WellKnownLocations())
            if (TryAccept(candidate, attempts) is var h and not 0)
                return (h, candidate, "a well-known system location");

        throw NotFound($"No libpython {MinimumVersion} or later was found.", attempts);
    }

    /// <summary>
    /// Why a loaded libpython cannot be used, or null when it can: too old, or free-threaded.
    /// Asked before the library joins the process's global symbol scope.
    /// </summary>
    private static string? Refusal(nint handle)
    {
        var version = ReadVersion(handle, out var full);
        return Refusal(version, full, name => Symbol(handle, name) != null);
    }

    /// <summary>The decision of <see cref="Refusal(nint)"/>, apart from any real library (for tests).</summary>
    internal static string? Refusal(Version version, string versionString, Func<string, bool> exports)
    {
        if (version < MinimumVersion)
            return $"is Python {version}; AsyncioRaw needs Python {MinimumVersion} or later";
        if (IsFreeThreaded(versionString, exports))
            return $"is a free-threaded build of Python {version} (Py_GIL_DISABLED), which AsyncioRaw does not support: " +
                   "its object header and reference counting differ from the GIL build's (Py_TYPE, Py_INCREF would read the wrong fields). " +
                   "Use the default build of the same version (libpython3.X.so, not libpython3.Xt.so)";
        return null;
    }

    /// <summary>
    /// A free-threaded build (3.13t and later) says so in <c>Py_GetVersion()</c> ("3.13.0 experimental
    /// free-threading build (...)", "3.14.0 free-threading build (...)") and exports the biased
    /// reference counting entry points that only exist with <c>Py_GIL_DISABLED</c>.
    /// </summary>
    internal static bool IsFreeThreaded(string versionString, Func<string, bool> exports)
    {
        int paren = versionString.IndexOf('(');
        var head = paren < 0 ? versionString : versionString[..paren];
        return head.Contains("free-threading", StringComparison.Ordinal) || exports("_Py_MergeZeroLocalRefcount");
    }

    private static string Refused(string path, string refusal, string rule) =>
        $"'{path}' {refusal}. It was found by {rule}. " +
        $"Point {LibraryVariable} at another libpython, or {ExecutableVariable} at another python.";

    /// <summary>
    /// Loads <paramref name="path"/> for inspection only and says whether this library would be
    /// accepted, without making it the process's libpython (for tests and diagnostics).
    /// </summary>
    internal static string Judge(string path)
    {
        var attempts = new List<string>();
        nint h = TryLoad(path, attempts);
        if (h == 0) return "not loadable: " + string.Join("; ", attempts);
        try
        {
            var version = ReadVersion(h, out var full);
            return Refusal(h) is { } refusal ? $"refused: {refusal}" : $"accepted: Python {version} ({full.Split(' ')[0]})";
        }
        finally
        {
            LibC.dlclose(h);
        }
    }

    private static PythonLibraryException NotFound(string what, List<string> attempts) => new(
        what + $" Install a CPython with a shared library (e.g. Debian's libpython3.11, or pyenv with " +
        $"PYTHON_CONFIGURE_OPTS=--enable-shared), or set {LibraryVariable} to the libpython file, " +
        $"or {ExecutableVariable} to a python executable, or call PythonLibrary.Use(path).", attempts);

    // An explicit choice (PythonLibrary.Use, the library variable) that cannot be used is an error
    // naming why; a discovered candidate that cannot be used is noted and the search goes on.
    private static nint LoadOrThrow(string path, string rule, List<string> attempts)
    {
        nint h = TryLoad(path, attempts);
        if (h == 0) throw NotFound($"{rule} names '{path}', which could not be loaded.", attempts);
        if (Refusal(h) is { } refusal)
        {
            LibC.dlclose(h);
            throw new PythonLibraryException(Refused(path, refusal, rule), attempts);
        }
        return Promote(h, path);
    }

    private static nint TryAccept(string path, List<string> attempts)
    {
        nint h = TryLoad(path, attempts);
        if (h == 0) return 0;
        if (Refusal(h) is { } refusal)
        {
            LibC.dlclose(h);
            attempts.Add($"{path}: {refusal}");
            return 0;
        }
        return Promote(h, path);
    }

    // Loaded RTLD_LOCAL so that a library we then refuse never enters the global symbol scope:
    // there it would be taken for "the process's own libpython" by the next attempt, and its
    // symbols would win over the accepted library's for extension modules. dlclose alone is not
    // enough, since the loader may keep a library mapped.
    private static nint TryLoad(string path, List<string> attempts)
    {
        if (path.Contains('/') && !File.Exists(path))
        {
            attempts.Add($"{path}: no such file");
            return 0;
        }
        nint h;
        fixed (byte* p = Utf8Z(path))
            h = LibC.dlopen(p, LibC.RTLD_NOW | LibC.RTLD_LOCAL);
        if (h == 0)
        {
            attempts.Add($"{path}: {Marshal.PtrToStringUTF8((nint)LibC.dlerror())}");
            return 0;
        }
        if (Symbol(h, "Py_GetVersion") == null)
        {
            attempts.Add($"{path}: loaded, but it is not libpython (no Py_GetVersion)");
            LibC.dlclose(h);
            return 0;
        }
        return h;
    }

    // Accepted: now RTLD_GLOBAL, so that C extension modules (_asyncio, _ssl), which are not linked
    // against libpython, resolve their Py* symbols to it. Reopening with RTLD_NOLOAD promotes the
    // library already loaded instead of loading it again.
    private static nint Promote(nint local, string path)
    {
        nint global;
        fixed (byte* p = Utf8Z(path))
            global = LibC.dlopen(p, LibC.RTLD_NOW | LibC.RTLD_GLOBAL | LibC.RTLD_NOLOAD);
        if (global == 0)
            throw new PythonLibraryException(
                $"'{path}' was loaded but could not be made global: {Marshal.PtrToStringUTF8((nint)LibC.dlerror())}", []);
        LibC.dlclose(local); // the same library: drop the extra reference, keep the global one
        return global;
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

    private static readonly string[] s_wellKnownDirs =
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/local/lib", "/usr/lib"];

    /// <summary>
    /// Every libpython3.X.so.1.0 in the well-known directories, X from 3.9 up, newest first, by
    /// pattern rather than a list of minors, so the next release is found the day it is installed.
    /// Release builds come before a debug build (3.Xd) of the same version; free-threaded builds
    /// (3.Xt) are left to be refused with their reason.
    /// </summary>
    internal static IEnumerable<string> WellKnownLocations(IEnumerable<string>? directories = null)
    {
        var found = new List<(int Minor, int Kind, string Path)>();
        foreach (var dir in directories ?? s_wellKnownDirs)
        {
            string[] files;
            try { files = Directory.Exists(dir) ? Directory.GetFiles(dir, "libpython3.*.so.1.0") : []; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (var file in files)
                if (ParseLibraryName(Path.GetFileName(file)) is { } parsed && parsed.Minor >= MinimumVersion.Minor)
                    found.Add((parsed.Minor, parsed.Abi switch { "" or "m" => 0, "d" or "dm" => 1, _ => 2 }, file));
        }
        // Stable within a version: the directories' order above decides between equal files.
        return found.OrderByDescending(f => f.Minor).ThenBy(f => f.Kind).Select(f => f.Path).ToList();
    }

    /// <summary>"libpython3.14d.so.1.0" gives (14, "d"), "libpython3.7m.so.1.0" (7, "m"); anything else, null.</summary>
    internal static (int Minor, string Abi)? ParseLibraryName(string fileName)
    {
        const string prefix = "libpython3.", suffix = ".so.1.0";
        if (!fileName.StartsWith(prefix, StringComparison.Ordinal) || !fileName.EndsWith(suffix, StringComparison.Ordinal)) return null;
        var middle = fileName[prefix.Length..^suffix.Length];
        int digits = 0;
        while (digits < middle.Length && char.IsAsciiDigit(middle[digits])) digits++;
        if (digits == 0 || digits > 3 || !int.TryParse(middle[..digits], out int minor)) return null;
        var abi = middle[digits..];
        return abi is "" or "d" or "t" or "td" or "m" or "dm" ? (minor, abi) : null;
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
    /// <summary>Every place tried, in order, each with the reason it was not used.</summary>
    public IReadOnlyList<string> Attempts { get; } = attempts;
}
