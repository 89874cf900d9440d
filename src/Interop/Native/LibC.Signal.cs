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

/// <summary>A signal's OS-level disposition, saved to be put back later.</summary>
internal sealed unsafe class SavedSignalAction
{
    private readonly int _signal;
    private readonly byte[] _action = new byte[LibC.SigactionBufferSize];

    private SavedSignalAction(int signal) => _signal = signal;

    /// <summary>The current disposition of <paramref name="signal"/>, or null if it cannot be read.</summary>
    internal static SavedSignalAction? Save(int signal)
    {
        var saved = new SavedSignalAction(signal);
        fixed (byte* action = saved._action)
            return LibC.sigaction(signal, null, action) == 0 ? saved : null;
    }

    internal void Restore()
    {
        fixed (byte* action = _action)
            LibC.sigaction(_signal, action, null);
    }
}
