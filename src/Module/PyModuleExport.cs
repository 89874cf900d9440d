using AsyncioRaw.Asyncio;

namespace AsyncioRaw.Module;

/// <summary>
/// The body of a module's <c>PyInit_&lt;name&gt;</c>. With <c>PythonModuleName</c> and
/// <c>PythonModuleDefine</c> set in the project, the build writes the entry point (see
/// build/AsyncioRaw.Module.targets); by hand it is:
/// <code>
/// [UnmanagedCallersOnly(EntryPoint = "PyInit_hashmod")]
/// private static nint PyInit() => PyModuleExport.Init("hashmod", Define);
/// </code>
/// </summary>
public static class PyModuleExport
{
    private static readonly CancellationTokenSource s_stopping = new();
    private static int s_atexitRegistered;

    /// <summary>Cancelled when the Python interpreter starts to shut down (from an <c>atexit</c>
    /// handler, while Python still runs). Long-running .NET work started by a module should stop
    /// on it: after Python has finalized, .NET code must not call into Python again.</summary>
    public static CancellationToken Stopping => s_stopping.Token;

    /// <summary>
    /// Initializes the library inside the host's interpreter (Python's symbols are taken from the
    /// process; no second libpython is loaded), runs <paramref name="define"/> and creates the
    /// module. Never throws: any failure is an ImportError naming the .NET exception, and the
    /// return value is then 0 (NULL), as CPython expects from PyInit.
    /// </summary>
    /// <returns>A new reference to the module, or 0 with a Python exception set.</returns>
    public static nint Init(string name, Action<PyModuleBuilder> define)
    {
        try
        {
            ArgumentException.ThrowIfNullOrEmpty(name);
            ArgumentNullException.ThrowIfNull(define);
            // The interop layer keeps one interpreter's objects in statics (exception types, names,
            // loops): a second interpreter must not see them.
            if (!ModuleNative.InMainInterpreter())
                throw new NotSupportedException($"the .NET module '{name}' cannot be imported in a sub-interpreter");
            PythonRuntime.Initialize(installSignalHandlers: false);
            if (!PythonRuntime.InitializedByHost)
                throw new InvalidOperationException("Python was not initialized by the process that imports this module");
            using var gil = Gil.Acquire();
            RegisterAtExit();
            var builder = new PyModuleBuilder(name);
            define(builder);
            return builder.Build();
        }
        catch (PythonErrorPending)
        {
            return 0;
        }
        catch (Exception e)
        {
            ModuleNative.SetImportError($"the .NET module '{name}' failed to initialize: {e.GetType().FullName}: {e.Message}");
            return 0;
        }
    }

    private static void RegisterAtExit()
    {
        if (Interlocked.Exchange(ref s_atexitRegistered, 1) != 0) return;
        using var atexit = Py.Import("atexit");
        using var onExit = PyFunction.Create("_dotnet_module_atexit", _ =>
        {
            s_stopping.Cancel();
            return null;
        });
        using (atexit.CallMethod("register", onExit)) { }
    }
}
