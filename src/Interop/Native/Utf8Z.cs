using System.Text;

namespace AsyncioRaw.Interop;

/// <summary>
/// C strings (<c>const char*</c>) for the C API: UTF-8, NUL-terminated. Every .NET string that
/// becomes one goes through here, because C stops at the first NUL: <c>GetAttr("real\0junk")</c>
/// would read <c>.real</c> and <c>Py.Run("x = 1\0junk")</c> would run <c>x = 1</c>, silently. Such a
/// string, or one with a lone surrogate (no UTF-8 form), is refused with an ArgumentException
/// naming the caller's parameter.
/// </summary>
internal static class Utf8Z
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>A new NUL-terminated UTF-8 array for <paramref name="s"/>.</summary>
    internal static byte[] Encode(string s, string paramName)
    {
        ThrowIfNul(s, paramName);
        try
        {
            var bytes = new byte[Strict.GetByteCount(s) + 1];
            Strict.GetBytes(s, bytes);
            return bytes;
        }
        catch (EncoderFallbackException e)
        {
            throw Unencodable(paramName, e);
        }
    }

    /// <summary>Encodes <paramref name="s"/> NUL-terminated into <paramref name="buffer"/> when it
    /// fits, else into a new array; returns the bytes including the terminator.</summary>
    internal static ReadOnlySpan<byte> Encode(string s, Span<byte> buffer, string paramName)
    {
        if (s.Length * 3 + 1 > buffer.Length) return Encode(s, paramName);
        ThrowIfNul(s, paramName);
        int n;
        try { n = Strict.GetBytes(s, buffer); }
        catch (EncoderFallbackException e) { throw Unencodable(paramName, e); }
        buffer[n] = 0;
        return buffer[..(n + 1)];
    }

    internal static void ThrowIfNul(string s, string paramName)
    {
        if (s.AsSpan().IndexOf('\0') >= 0)
            throw new ArgumentException(
                $"{paramName} contains a NUL character ('\\0'); Python would see only the text before it.", paramName);
    }

    private static ArgumentException Unencodable(string paramName, EncoderFallbackException e) =>
        new($"{paramName} contains a lone surrogate, which has no UTF-8 form.", paramName, e);
}
