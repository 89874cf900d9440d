namespace AsyncioRaw.Interop;

/// <summary>
/// The first CPython version that exports this function (or defines this constant / struct).
/// Callers must branch on <see cref="PythonLibrary.Version"/> before calling it, and the
/// native-headers check only compiles it against headers of that version or later.
/// Absent means "every supported version" (3.9 and later).
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Field | AttributeTargets.Struct)]
internal sealed class SinceAttribute(int major, int minor) : Attribute
{
    public int Major { get; } = major;
    public int Minor { get; } = minor;
}

/// <summary>The first CPython version that no longer exports this function.</summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Field)]
internal sealed class UntilAttribute(int major, int minor) : Attribute
{
    public int Major { get; } = major;
    public int Minor { get; } = minor;
}

/// <summary>The C name of a struct whose C# name differs from it (<c>NativePyObject</c> is C's
/// <c>PyObject</c>, renamed so that it cannot be mistaken for the owned <see cref="AsyncioRaw.PyObject"/>).
/// The native-headers check compares the struct against this name.</summary>
[AttributeUsage(AttributeTargets.Struct)]
internal sealed class CNameAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}
