using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// pylifecycle.h
internal static unsafe partial class CPython
{
    /// <summary>initsigs=1 installs Python's SIGINT handler (KeyboardInterrupt). Leaves this thread holding the GIL.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial void Py_InitializeEx(int initsigs);

    /// <summary>Callable without the GIL and before initialization.</summary>
    [LibraryImport(Libraries.Python)]
    internal static partial int Py_IsInitialized();

    /// <returns>0, or -1 when flushing buffered data failed. Requires the GIL, on the initializing thread.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int Py_FinalizeEx();

    /// <returns>A static string such as "3.11.7 (main, ...) [GCC 12.2.0]"; callable before initialization.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial byte* Py_GetVersion();

    [LibraryImport(Libraries.Python), Until(3, 13)]
    internal static partial int _Py_IsFinalizing();

    [LibraryImport(Libraries.Python), Since(3, 13)]
    internal static partial int Py_IsFinalizing();
}
