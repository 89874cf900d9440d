using System.Runtime.InteropServices;
using AsyncioRaw;

namespace AsyncioRaw.Module;

/// <summary>
/// The body of a module's <c>PyInit_&lt;name&gt;</c>. With <c>PythonModuleName</c> and
/// <c>PythonModuleDefine</c> set in the project, the build writes the entry point (see
/// build/AsyncioRaw.Module.targets); by hand it is:
/// <code>
/// [UnmanagedCallersOnly(EntryPoint = "PyInit_hashmod")]
/// private static nint PyInit() => PyModuleExport.Init("hashmod", Definition.Define);
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

    // One entry per module in this shared library (normally one), keyed by its definition.
    private static readonly Dictionary<nint, PyModuleBuilder> s_modules = [];

    /// <summary>
    /// Initializes the library inside the host's interpreter (Python's symbols are taken from the
    /// process; no second libpython is loaded), runs <paramref name="define"/> and returns the
    /// module's definition; CPython then creates the module and fills it (multi-phase
    /// initialization). Never throws: any failure is an ImportError naming the .NET exception, and
    /// the return value is then 0 (NULL), as CPython expects from PyInit.
    /// </summary>
    /// <returns>The module definition as a Python object, or 0 with a Python exception set.</returns>
    public static unsafe nint Init(string name, Action<PyModuleBuilder> define)
    {
        try
        {
            ArgumentException.ThrowIfNullOrEmpty(name);
            ArgumentNullException.ThrowIfNull(define);
            ThrowIfSubInterpreter(name);
            PythonRuntime.Initialize(installSignalHandlers: false);
            if (!PythonRuntime.InitializedByHost)
                throw new InvalidOperationException("Python was not initialized by the process that imports this module");
            using var gil = Gil.Acquire();
            RegisterAtExit();
            var builder = new PyModuleBuilder(name);
            define(builder);
            var def = builder.CreateDefinition(&Exec);
            lock (s_modules) s_modules[(nint)def] = builder;
            return ModuleNative.PyModuleDef_Init(def);
        }
        catch (Exception e)
        {
            ModuleNative.SetImportError($"the .NET module '{name}' failed to initialize: {e.GetType().FullName}: {e.Message}");
            return 0;
        }
    }

    /// <summary>Py_mod_exec: fills the module CPython created. Never throws (0 or -1 with an error set).</summary>
    [UnmanagedCallersOnly]
    private static unsafe int Exec(nint module)
    {
        string name = "?";
        try
        {
            var def = ModuleNative.PyModule_GetDef(module);
            PyModuleBuilder? builder;
            lock (s_modules) s_modules.TryGetValue((nint)def, out builder);
            if (builder is null) throw new InvalidOperationException("the module was not created from a definition of this library");
            name = builder.Name;
            ThrowIfSubInterpreter(name);
            using var gil = Gil.Acquire();
            builder.Populate(module);
            return 0;
        }
        catch (Exception e)
        {
            ModuleNative.SetImportError($"the .NET module '{name}' failed to initialize: {e.GetType().FullName}: {e.Message}");
            return -1;
        }
    }

    // The interop layer keeps one interpreter's objects in statics (exception types, names, the
    // asyncio functions it calls): another interpreter must not see them.
    private static void ThrowIfSubInterpreter(string name)
    {
        if (!ModuleNative.InMainInterpreter())
            throw new NotSupportedException($"the .NET module '{name}' cannot be imported in a sub-interpreter");
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
