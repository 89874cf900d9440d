using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// memoryobject.h
internal static unsafe partial class CPython
{
    internal const int PyBUF_READ = 0x100;
    internal const int PyBUF_WRITE = 0x200;

    /// <summary>A memoryview over memory the caller keeps alive for as long as the view exists.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyMemoryView_FromMemory(byte* mem, nint size, int flags);
}
