using System.Runtime.InteropServices;
using AsyncioRaw.Interop;
using AsyncioRaw.NativeHeaders;

namespace AsyncioRaw.Tests;

/// <summary>Our declarations against every installed Python.h, and proof that the check fails
/// for each kind of mistake it exists to catch.</summary>
[TestFixture]
public partial class NativeHeaderTests
{
    private static IEnumerable<TestCaseData> Pythons() =>
        HeaderCheck.InstalledPythons().Select(p => new TestCaseData(p).SetArgDisplayNames(p.Name));

    private static string WorkDir(string name) =>
        Path.Combine(Path.GetTempPath(), "asyncioraw-header-tests", name + "-" + Environment.ProcessId);

    [TestCaseSource(nameof(Pythons))]
    public void Declarations_match_Python_h_and_are_exported(HeaderCheck.Python python)
    {
        var source = HeaderCheck.Generate(HeaderCheck.InteropTypes(), CPython.DataExportNames);
        var outcome = HeaderCheck.Check(source, python, WorkDir(python.Name.Replace(' ', '-')));
        Assert.That(outcome.Passed, $"{outcome.Stage} failed:\n{outcome.Output}");
    }

    private static HeaderCheck.Python Reference(int minor)
    {
        var python = HeaderCheck.InstalledPythons().FirstOrDefault(p => p.IncludeDir.EndsWith($"python3.{minor}"));
        if (python is null) Assert.Ignore($"no CPython 3.{minor} with headers is installed");
        return python!;
    }

    private static HeaderCheck.Outcome CheckFake(Type fake, int minor = 11) =>
        HeaderCheck.Check(HeaderCheck.Generate([fake], []), Reference(minor), WorkDir(fake.Name));

    [Test]
    public void A_correct_declaration_passes() => Assert.That(CheckFake(typeof(Correct)).Passed, CheckFake(typeof(Correct)).Output);

    [TestCase(typeof(WrongReturnType), "PyLong_FromLongLong")]
    [TestCase(typeof(WrongParameterSize), "PyLong_FromLongLong")]
    [TestCase(typeof(WrongParameterCount), "PyObject_GetAttr")]
    [TestCase(typeof(WrongPointerDepth), "PyObject_Str")]
    [TestCase(typeof(WrongSignedness), "PyLong_FromUnsignedLongLong")]
    [TestCase(typeof(WrongConstant), "Py_file_input")]
    [TestCase(typeof(WrongCallbackSignature), "PyCapsule_New")]
    [TestCase(typeof(PyMethodDef), "PyMethodDef")]
    public void A_wrong_declaration_fails_to_compile(Type fake, string named)
    {
        var outcome = CheckFake(fake);
        Assert.That(outcome.Passed, Is.False, "the check accepted a wrong declaration");
        Assert.That(outcome.Stage, Is.EqualTo("compile"));
        Assert.That(outcome.Output, Does.Contain(named));
    }

    [Test]
    public void A_function_that_is_only_static_inline_fails_the_export_check()
    {
        var outcome = CheckFake(typeof(InlineOnly), minor: 10);
        Assert.That(outcome.Passed, Is.False);
        Assert.That(outcome.Stage, Is.EqualTo("exports"));
        Assert.That(outcome.Output, Does.Contain("not exported: PyObject_CallOneArg"));
    }

    [Test]
    public void A_missing_version_guard_fails_on_older_headers()
    {
        var outcome = CheckFake(typeof(MissingSince), minor: 11);
        Assert.That(outcome.Passed, Is.False);
        Assert.That(outcome.Output, Does.Contain("PyErr_GetRaisedException"));
    }

    // ---- Deliberately wrong declarations (never called) ----

    internal static unsafe partial class Correct
    {
        [LibraryImport("python")] internal static partial NativePyObject* PyLong_FromLongLong(long v);
        internal const int Py_file_input = 257;
    }

    internal static unsafe partial class WrongReturnType
    {
        [LibraryImport("python")] internal static partial int PyLong_FromLongLong(long v);
    }

    internal static unsafe partial class WrongParameterSize
    {
        [LibraryImport("python")] internal static partial NativePyObject* PyLong_FromLongLong(int v);
    }

    internal static unsafe partial class WrongParameterCount
    {
        [LibraryImport("python")] internal static partial NativePyObject* PyObject_GetAttr(NativePyObject* o);
    }

    internal static unsafe partial class WrongPointerDepth
    {
        [LibraryImport("python")] internal static partial NativePyObject* PyObject_Str(NativePyObject** o);
    }

    internal static unsafe partial class WrongSignedness
    {
        [LibraryImport("python")] internal static partial NativePyObject* PyLong_FromUnsignedLongLong(long v);
    }

    internal static class WrongConstant
    {
        internal const int Py_file_input = 256;
    }

    internal static unsafe partial class WrongCallbackSignature
    {
        [LibraryImport("python")]
        internal static partial NativePyObject* PyCapsule_New(void* pointer, byte* name, delegate* unmanaged<NativePyObject*, int> destructor);
    }

    // ml_flags declared 8 bytes wide: the size and the following offset move.
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct PyMethodDef
    {
        public byte* ml_name;
        public void* ml_meth;
        public long ml_flags;
        public byte* ml_doc;
    }

    internal static unsafe partial class InlineOnly
    {
        // Declared in 3.9/3.10 headers, but as static inline: there is nothing to import.
        [LibraryImport("python")] internal static partial NativePyObject* PyObject_CallOneArg(NativePyObject* f, NativePyObject* arg);
    }

    internal static unsafe partial class MissingSince
    {
        // 3.12+ only; without [Since(3, 12)] the 3.11 headers do not declare it.
        [LibraryImport("python")] internal static partial NativePyObject* PyErr_GetRaisedException();
    }
}
