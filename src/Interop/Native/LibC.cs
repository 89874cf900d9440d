using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// The few libc functions we need: dlopen with RTLD_GLOBAL (NativeLibrary.Load uses RTLD_LOCAL,
// which hides libpython's symbols from C extension modules such as _asyncio that are not linked
// against it), and eventfd for waking an event loop without taking the GIL.
internal static unsafe partial class LibC
{
    private const string Name = "libc.so.6";

    internal const int RTLD_LAZY = 0x0001;
    internal const int RTLD_NOW = 0x0002;
    internal const int RTLD_NOLOAD = 0x0004;
    internal const int RTLD_GLOBAL = 0x0100;
    internal const int RTLD_LOCAL = 0;

    [LibraryImport(Name)]
    internal static partial nint dlopen(byte* filename, int flags);

    [LibraryImport(Name)]
    internal static partial void* dlsym(nint handle, byte* symbol);

    [LibraryImport(Name)]
    internal static partial byte* dlerror();

    // A libpython inspected and refused is closed again (PythonLibrary).
    [LibraryImport(Name)]
    internal static partial int dlclose(nint handle);

    internal const int EFD_CLOEXEC = 0x80000;
    internal const int EFD_NONBLOCK = 0x800;

    [LibraryImport(Name, SetLastError = true)]
    internal static partial int eventfd(uint initval, int flags);

    [LibraryImport(Name, SetLastError = true)]
    internal static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport(Name, SetLastError = true)]
    internal static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport(Name)]
    internal static partial int close(int fd);
}
