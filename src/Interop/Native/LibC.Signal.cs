using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// Signal dispositions, saved and restored as opaque bytes: Python's signal.signal() replaces the
// process-wide SIGINT handler (the .NET runtime's, behind Console.CancelKeyPress) and has no way
// to put a handler it did not install back.
internal static unsafe partial class LibC
{
    internal const int SIGINT = 2;

    /// <summary>Bytes that hold glibc's x86-64/arm64 <c>struct sigaction</c> (152) with room to spare.</summary>
    internal const int SigactionBufferSize = 256;

    [LibraryImport(Name, SetLastError = true)]
    internal static partial int sigaction(int signum, void* act, void* oldact);
}
