using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// A Linux eventfd: how other threads wake an event loop without taking the GIL (the loop watches
/// it with add_reader). Nonblocking and close-on-exec.
/// </summary>
internal static unsafe class EventFd
{
    /// <summary>A new eventfd, or -1 when the system refuses one.</summary>
    internal static int Create() => LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);

    /// <summary>Makes the descriptor readable; false if the write failed (closed, overflow).</summary>
    internal static bool Signal(int fd)
    {
        ulong one = 1;
        return LibC.write(fd, &one, sizeof(ulong)) == sizeof(ulong);
    }

    /// <summary>Consumes pending signals (EAGAIN when there were none: fine).</summary>
    internal static void Reset(int fd)
    {
        ulong value;
        LibC.read(fd, &value, sizeof(ulong));
    }

    internal static void Close(int fd) => LibC.close(fd);
}
