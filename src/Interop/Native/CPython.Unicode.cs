using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// unicodeobject.h, bytesobject.h. All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>New reference, or NULL with an exception set (invalid UTF-8).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyUnicode_FromStringAndSize(byte* u, nint size);

    /// <summary>errors may be "surrogatepass" to keep lone surrogates; byteorder NULL means native with BOM detection.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyUnicode_DecodeUTF16(byte* s, nint size, byte* errors, int* byteorder);

    /// <returns>A buffer owned by the str object (valid while it lives), or NULL with an
    /// exception set (e.g. lone surrogates cannot be encoded).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial byte* PyUnicode_AsUTF8AndSize(NativePyObject* unicode, nint* size);

    /// <returns>New reference (bytes), or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyUnicode_AsEncodedString(NativePyObject* unicode, byte* encoding, byte* errors);

    /// <returns>New reference (an interned str), or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyUnicode_InternFromString(byte* v);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyBytes_FromStringAndSize(byte* v, nint len);

    /// <summary>*buffer points into the bytes object (valid while it lives).</summary>
    /// <returns>0, or -1 with an exception set (not bytes).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyBytes_AsStringAndSize(NativePyObject* obj, byte** buffer, nint* length);
}
