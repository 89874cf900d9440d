namespace AsyncioRaw.Tests;

/// <summary>Each rule of libpython discovery, observed in a fresh process.</summary>
[TestFixture]
public class DiscoveryTests
{
    [Test]
    public void Default_asks_python3_on_PATH_through_sysconfig()
    {
        var r = Probe.Run(null, "which");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("rule"), Is.EqualTo("python3 on PATH (sysconfig)"));
        Assert.That(File.Exists(r.Value("path")), r.Output);
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
    public void Without_python3_on_PATH_well_known_locations_are_tried()
    {
        const string debianLib = "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0";
        if (!File.Exists(debianLib)) Assert.Ignore($"{debianLib} is not installed (Debian's libpython3.11)");
        var r = Probe.Run(new Dictionary<string, string?> { ["PATH"] = "/nonexistent" }, "which");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output + r.Error);
        Assert.That(r.Value("rule"), Is.EqualTo("a well-known system location"));
        Assert.That(r.Value("path"), Is.EqualTo(debianLib));
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
    public void Extension_modules_import_because_the_library_is_loaded_globally()
    {
        using var asyncio = Py.Import("_asyncio");
        using var ssl = Py.Import("_ssl");
        Assert.That(asyncio.HasAttr("Future"));
    }
}
