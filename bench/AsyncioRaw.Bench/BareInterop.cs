using System.Runtime.InteropServices;

namespace AsyncioRaw.Bench;

// The floor for S6: the same C calls made through plain P/Invoke written here, with none of the
// library's checks, guards or conversions. The resolver of the library maps "python" for its own
// assembly only, so this one resolves to the already-loaded libpython by handle.
internal static unsafe partial class BareInterop
{
    private const string Lib = "asyncioraw-bench-python";

    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(BareInterop).Assembly, static (name, _, _) => name == Lib ? PythonLibrary.Load() : 0);

    [LibraryImport(Lib)] internal static partial nint PyLong_FromLongLong(long v);
    [LibraryImport(Lib)] internal static partial long PyLong_AsLongLong(nint o);
    [LibraryImport(Lib)] internal static partial void Py_DecRef(nint o);
    [LibraryImport(Lib)] internal static partial nint PyObject_VectorcallDict(nint callable, nint* args, nuint nargsf, nint kwargs);
    [LibraryImport(Lib)] internal static partial nint PyObject_Vectorcall(nint callable, nint* args, nuint nargsf, nint kwnames);
    [LibraryImport(Lib)] internal static partial int PyGILState_Ensure();
    [LibraryImport(Lib)] internal static partial void PyGILState_Release(int state);
}
