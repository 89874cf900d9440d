namespace AsyncioRaw.Tests;

/// <summary>Each rule of libpython discovery, observed in a fresh process.</summary>
[TestFixture]
public class DiscoveryTests
{
    [Test]
    public void Default_asks_python3_on_PATH_through_sysconfig()
    {
        // Where there is no python3 on PATH (the sid root has only python3.X), one is put there:
        // the rule is what is tested, not this machine's PATH.
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        if (FindOnPath("python3") is null)
        {
            var dir = Directory.CreateTempSubdirectory("asyncioraw-path-").FullName;
            File.CreateSymbolicLink(Path.Combine(dir, "python3"), AnyPythonExecutable());
            path = dir + ":" + path;
        }
        var r = Probe.Run(new Dictionary<string, string?> { ["PATH"] = path }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("rule"), Is.EqualTo("python3 on PATH (sysconfig)"));
        Assert.That(File.Exists(r.Value("path")), r.Output);
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    // The newest /usr/bin/python3.X, else pyenv's newest.
    private static string AnyPythonExecutable()
    {
        var system = Directory.GetFiles("/usr/bin", "python3.*")
            .Where(f => int.TryParse(Path.GetFileName(f)["python3.".Length..], out _))
            .OrderByDescending(f => int.Parse(Path.GetFileName(f)["python3.".Length..]))
            .FirstOrDefault();
        return system ?? Probe.PyenvExecutable("13");
    }

    [Test]
    public void Library_variable_names_the_file()
    {
        var lib = Probe.PyenvLibrary("12");
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON_LIBRARY"] = lib }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("version"), Is.EqualTo("3.12"));
        Assert.That(r.Value("rule"), Is.EqualTo("ASYNCIORAW_PYTHON_LIBRARY"));
    }

    [Test]
    public void Executable_variable_is_asked_through_sysconfig()
    {
        var exe = Probe.PyenvExecutable("13");
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON"] = exe }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("version"), Is.EqualTo("3.13"));
        Assert.That(r.Value("path"), Does.EndWith("libpython3.13.so.1.0"));
    }

    [Test]
    public void Path_given_in_code_wins_over_the_environment()
    {
        var lib10 = Probe.PyenvLibrary("10");
        var lib12 = Probe.PyenvLibrary("12");
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON_LIBRARY"] = lib12 }, "use", lib10);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("version"), Is.EqualTo("3.10"));
        Assert.That(r.Value("rule"), Is.EqualTo("PythonLibrary.Use"));
    }

    [Test]
    public void Without_python3_on_PATH_well_known_locations_are_tried_newest_first()
    {
        var newest = PythonLibrary.WellKnownLocations().FirstOrDefault();
        if (newest is null) Assert.Ignore("no libpython3.X.so.1.0 is installed in the well-known directories");
        var r = Probe.Run(new Dictionary<string, string?> { ["PATH"] = "/nonexistent" }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("rule"), Is.EqualTo("a well-known system location"));
        Assert.That(r.Value("path"), Is.EqualTo(newest));
        Assert.That(newest, Does.Contain($"libpython{r.Value("version")}"));
    }

    [Test]
    public void Well_known_locations_are_found_by_pattern_and_sorted_by_version()
    {
        var dir = Directory.CreateTempSubdirectory("asyncioraw-libs-").FullName;
        var other = Directory.CreateTempSubdirectory("asyncioraw-libs-").FullName;
        try
        {
            foreach (var name in new[] { "libpython3.8.so.1.0", "libpython3.9.so.1.0", "libpython3.10.so.1.0", "libpython3.15d.so.1.0",
                                         "libpython3.15.so.1.0", "libpython3.14t.so.1.0", "libpython3.so", "libpython3.12.so", "libpython3.x.so.1.0" })
                File.WriteAllText(Path.Combine(dir, name), "");
            File.WriteAllText(Path.Combine(other, "libpython3.16.so.1.0"), "");
            var found = PythonLibrary.WellKnownLocations([dir, other, "/nonexistent"]).Select(Path.GetFileName);
            Assert.That(found, Is.EqualTo(new[]
            {
                "libpython3.16.so.1.0", "libpython3.15.so.1.0", "libpython3.15d.so.1.0", "libpython3.14t.so.1.0",
                "libpython3.10.so.1.0", "libpython3.9.so.1.0",
            }));
        }
        finally
        {
            Directory.Delete(dir, true);
            Directory.Delete(other, true);
        }
    }

    [Test]
    public void Symbols_already_in_the_process_are_used()
    {
        var lib = Probe.PyenvLibrary("12");
        var r = Probe.Run(new Dictionary<string, string?> { ["LD_PRELOAD"] = lib }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("rule"), Is.EqualTo("the symbols already present in the process"));
        Assert.That(r.Value("version"), Is.EqualTo("3.12"));
    }

    [Test]
    public void Missing_library_is_a_clear_error_listing_what_was_tried()
    {
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON_LIBRARY"] = "/nonexistent/libpython3.99.so" }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Output + r.Error);
        Assert.That(r.Output, Does.Contain("LIBRARY-ERROR"));
        Assert.That(r.Output, Does.Contain("Tried:"));
        Assert.That(r.Output, Does.Contain("/nonexistent/libpython3.99.so: no such file"));
        Assert.That(r.Output, Does.Contain("ASYNCIORAW_PYTHON"));
    }

    [Test]
    public void Missing_executable_is_a_clear_error()
    {
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON"] = "/nonexistent/python3" }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Output + r.Error);
        Assert.That(r.Output, Does.Contain("/nonexistent/python3: could not be run"));
    }

    [Test]
    public void A_library_that_is_not_libpython_is_refused()
    {
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON_LIBRARY"] = "/lib/x86_64-linux-gnu/libz.so.1" }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Output + r.Error);
        Assert.That(r.Output, Does.Contain("not libpython"));
    }

    [Test]
    public void Python_older_than_3_9_is_refused_with_a_clear_message()
    {
        var lib = Probe.PyenvLibrary("8");
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON_LIBRARY"] = lib }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Output + r.Error);
        Assert.That(r.Output, Does.Contain("is Python 3.8").And.Contain("needs Python 3.9 or later"));
    }

    [Test]
    public void A_refused_library_does_not_stand_in_the_way_of_the_next_choice()
    {
        var old = Probe.PyenvLibrary("8");
        var good = Probe.PyenvLibrary("11");
        var r = Probe.Run(null, "use-after-refused", old, good);
        Assert.That(r.Value("refused"), Does.Contain("is Python 3.8"), r.Output + r.Error);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("version"), Is.EqualTo("3.11"));
        Assert.That(r.Value("rule"), Is.EqualTo("PythonLibrary.Use"));
        Assert.That(r.Value("path"), Is.EqualTo(good));
    }

    [TestCase("3.13.0 experimental free-threading build (main, Oct  8 2024, 10:54:14) [GCC 12.2.0]", true)]
    [TestCase("3.14.0 free-threading build (main, Oct  7 2025, 09:00:00) [Clang 17.0.0]", true)]
    [TestCase("3.14.10 (main, Oct 26 2026, 15:12:11) [GCC 16.2.0]", false)]
    [TestCase("3.11.7 (main, Nov 20 2026, 10:00:00) [GCC 12.2.0 free-threading patched]", false)] // the compiler's text is not the build's
    public void A_free_threaded_build_is_told_by_its_version_string(string version, bool freeThreaded)
    {
        Assert.That(PythonLibrary.IsFreeThreaded(version, _ => false), Is.EqualTo(freeThreaded));
        var refusal = PythonLibrary.Refusal(new Version(3, 14, 0), version, _ => false);
        Assert.That(refusal, freeThreaded ? Does.Contain("free-threaded build").And.Contain("Py_GIL_DISABLED") : Is.Null);
    }

    [Test]
    public void A_free_threaded_build_is_told_by_its_exports()
    {
        const string plain = "3.14.0 (main, Oct  7 2025, 09:00:00) [GCC 14.2.0]";
        Assert.That(PythonLibrary.IsFreeThreaded(plain, name => name == "_Py_MergeZeroLocalRefcount"), Is.True);
        Assert.That(PythonLibrary.IsFreeThreaded(plain, name => name == "Py_GetVersion"), Is.False);
        Assert.That(PythonLibrary.Refusal(new Version(3, 8, 18), plain, _ => false), Does.Contain("needs Python 3.9 or later"));
    }

    // Every real library here is judged as it is: not free-threaded, accepted from 3.9 up.
    [Test]
    public void Every_installed_library_is_judged_right()
    {
        var libraries = PythonLibrary.WellKnownLocations().Concat(PyenvLibraries()).Distinct().ToList();
        Assert.That(libraries, Is.Not.Empty);
        var r = Probe.Run(null, ["judge", .. libraries]);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        foreach (var lib in libraries)
        {
            var minor = PythonLibrary.ParseLibraryName(Path.GetFileName(lib))!.Value.Minor;
            Assert.That(r.Value($"judge:{lib}"), Does.StartWith(minor >= 9 ? "accepted: Python 3." + minor : "refused: is Python 3." + minor), r.Output);
        }
    }

    private static IEnumerable<string> PyenvLibraries() =>
        Directory.Exists("/root/.pyenv/versions")
            ? Directory.GetDirectories("/root/.pyenv/versions", "3.*")
                .SelectMany(d => Directory.Exists(Path.Combine(d, "lib")) ? Directory.GetFiles(Path.Combine(d, "lib"), "libpython3.*.so.1.0") : [])
            : [];

    // A library that says it is free-threaded, as 3.13t's does: refused with its reason, and the
    // refusal leaves the way open for a good library afterwards.
    [Test]
    public void A_free_threaded_library_is_refused_and_does_not_stand_in_the_way()
    {
        var fake = FakeFreeThreadedLibrary();
        var r = Probe.Run(new Dictionary<string, string?> { ["ASYNCIORAW_PYTHON_LIBRARY"] = fake }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(3), r.Output + r.Error);
        Assert.That(r.Output, Does.Contain("is a free-threaded build of Python 3.14.0 (Py_GIL_DISABLED)"));

        var good = PythonLibrary.WellKnownLocations().Concat(PyenvLibraries())
            .FirstOrDefault(l => PythonLibrary.ParseLibraryName(Path.GetFileName(l))!.Value.Minor >= 9);
        if (good is null) Assert.Ignore("no CPython 3.9+ library to use after the refusal");
        var after = Probe.Run(null, "use-after-refused", fake, good!);
        Assert.That(after.Value("refused"), Does.Contain("free-threaded"), after.Output + after.Error);
        Assert.That(after.ExitCode, Is.EqualTo(0), after.Output + after.Error);
        Assert.That(after.Value("path"), Is.EqualTo(good));
    }

    // Exports what a free-threaded libpython3.14t exports for our purpose, and nothing more.
    private static string FakeFreeThreadedLibrary()
    {
        var dir = Directory.CreateTempSubdirectory("asyncioraw-fake-").FullName;
        var source = Path.Combine(dir, "fake.c");
        var lib = Path.Combine(dir, "libpython3.14t.so.1.0");
        File.WriteAllText(source,
            "const char *Py_GetVersion(void) { return \"3.14.0 free-threading build (main, Oct  7 2025, 09:00:00) [GCC 14.2.0]\"; }\n" +
            "int Py_IsInitialized(void) { return 0; }\n" +
            "void _Py_MergeZeroLocalRefcount(void *op) { (void)op; }\n");
        var psi = new System.Diagnostics.ProcessStartInfo("gcc", ["-shared", "-fPIC", "-o", lib, source])
            { RedirectStandardError = true, UseShellExecute = false };
        System.Diagnostics.Process? gcc;
        try { gcc = System.Diagnostics.Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception) { gcc = null; }
        if (gcc is null) Assert.Ignore("no C compiler (gcc) to build the fake free-threaded library with");
        var error = gcc!.StandardError.ReadToEnd();
        gcc.WaitForExit();
        Assert.That(gcc.ExitCode, Is.EqualTo(0), error);
        return lib;
    }

    [Test]
    public void Extension_modules_import_because_the_library_is_loaded_globally()
    {
        using var asyncio = Py.Import("_asyncio");
        using var ssl = Py.Import("_ssl");
        Assert.That(asyncio.HasAttr("Future"));
    }
}
