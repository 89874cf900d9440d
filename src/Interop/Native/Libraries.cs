namespace AsyncioRaw.Interop;

internal static class Libraries
{
    /// <summary>
    /// The one library name every import uses. It is not a file name: <see cref="PythonLibrary"/>
    /// installs a resolver that maps it to the libpython it found (or to the process itself when
    /// Python is already loaded).
    /// </summary>
    internal const string Python = "python";
}
