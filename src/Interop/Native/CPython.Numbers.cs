using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// longobject.h, floatobject.h, boolobject.h. All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>New reference, or NULL on memory error.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyLong_FromLongLong(long v);

    /// <returns>New reference, or NULL on memory error.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyLong_FromUnsignedLongLong(ulong v);

    /// <returns>The value, or -1 with an exception set (OverflowError, TypeError).
    /// Calls __index__ on non-int objects, so it may run Python code.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial long PyLong_AsLongLong(NativePyObject* o);

    /// <returns>The value, or (ulong)-1 with an exception set. Accepts only int instances.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial ulong PyLong_AsUnsignedLongLong(NativePyObject* o);

    /// <returns>The value; *overflow is set to +1/-1 (and -1 returned, no exception) when out of range.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial long PyLong_AsLongLongAndOverflow(NativePyObject* o, int* overflow);

    /// <returns>New reference, or NULL with an exception set. Not subject to the
    /// int-max-str-digits limit for power-of-two bases.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyLong_FromString(byte* str, byte** pend, int @base);

    /// <returns>New reference.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyFloat_FromDouble(double v);

    /// <returns>The value, or -1.0 with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial double PyFloat_AsDouble(NativePyObject* o);

    /// <returns>New reference to True or False.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyBool_FromLong(nint v);
}
