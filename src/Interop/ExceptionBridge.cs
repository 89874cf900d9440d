using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// .NET exceptions into Python: a Python exception whose message names the .NET type and
/// message, with <c>dotnet_type</c>, <c>dotnet_message</c>, <c>dotnet_stack_trace</c> attributes
/// (and a note on 3.11+). OperationCanceledException → asyncio.CancelledError, TimeoutException →
/// TimeoutError, ArgumentException → ValueError, NotSupported/NotImplemented →
/// NotImplementedError, KeyNotFoundException → KeyError, InvalidCastException → TypeError,
/// IndexOutOfRange/ArgumentOutOfRange → IndexError/ValueError; anything else →
/// <c>asyncioraw.DotNetError</c>. A .NET exception that comes back from Python is the same object,
/// and a <see cref="PythonException"/> raised into Python is its original Python object.
/// </summary>
public static unsafe class ExceptionBridge
{
    internal const string ModuleName = "asyncioraw";

    private const string ModuleSource = """
        '''AsyncioRaw: .NET and asyncio in one process. Exceptions raised from .NET code.'''

        class DotNetError(Exception):
            '''A .NET exception raised into Python. See dotnet_type, dotnet_message, dotnet_stack_trace.'''

        class DotNetValueError(DotNetError, ValueError): pass
        class DotNetTypeError(DotNetError, TypeError): pass
        class DotNetKeyError(DotNetError, KeyError): pass
        class DotNetIndexError(DotNetError, IndexError): pass
        class DotNetTimeoutError(DotNetError, TimeoutError): pass
        class DotNetNotImplementedError(DotNetError, NotImplementedError): pass

        _kinds = {'value': DotNetValueError, 'type': DotNetTypeError, 'key': DotNetKeyError,
                  'index': DotNetIndexError, 'timeout': DotNetTimeoutError,
                  'notimpl': DotNetNotImplementedError}

        def _make(kind, dotnet_type, message, stack, handle):
            if kind == 'cancelled':
                import asyncio
                exc = asyncio.CancelledError(f'{dotnet_type}: {message}')
            else:
                exc = _kinds.get(kind, DotNetError)(f'{dotnet_type}: {message}')
            exc.dotnet_type = dotnet_type
            exc.dotnet_message = message
            exc.dotnet_stack_trace = stack
            exc._dotnet_handle = handle
            if stack and hasattr(exc, 'add_note'):
                exc.add_note('.NET stack trace:\n' + stack)
            return exc
        """;

    private static PyObject? s_module;
    private static PyObject? s_make;

    /// <summary>The <c>asyncioraw</c> module (also importable from Python once initialized).</summary>
    public static PyObject Module => s_module ?? throw new InvalidOperationException("Python is not initialized.");

    /// <summary>Creates the asyncioraw module. Requires the GIL.</summary>
    internal static void Initialize()
    {
        var module = Py.CreateModule(ModuleName, ModuleSource, register: true);
        s_make = module.GetAttr("_make");
        s_module = module;
        ObjectFinalizationHooks.Register(static () =>
        {
            s_make?.Dispose(); s_make = null;
            s_module?.Dispose(); s_module = null;
        });
    }

    /// <summary>The Python exception for <paramref name="exception"/> (the same Python object for a
    /// <see cref="PythonException"/>).</summary>
    public static PyObject ToPython(Exception exception)
    {
        using var gil = Gil.Acquire();
        return PyObject.StealOrThrow(ToPythonRaw(exception, 0));
    }

    /// <summary>Sets <paramref name="exception"/> as the pending Python error. Never throws: if even
    /// that fails, a RuntimeError with the text is raised, and failing that, it is logged. Requires the GIL.</summary>
    internal static void Raise(Exception exception)
    {
        try
        {
            var exc = ToPythonRaw(exception, 0);
            if (exc != null)
            {
                PythonException.RestoreRaw(exc);
                return;
            }
        }
        catch (Exception conversionFailure)
        {
            exception = new AggregateException("converting a .NET exception to Python failed", exception, conversionFailure);
        }
        try
        {
            CPython.PyErr_Clear();
            fixed (byte* m = PythonLibrary.Utf8Z($"{exception.GetType().FullName}: {exception.Message}"))
                CPython.PyErr_SetString(CPython.PyExc_RuntimeError, m);
        }
        catch (Exception e)
        {
            CallbackFailure.Report("raising a .NET exception into Python", e);
        }
    }

    /// <summary>New reference, or NULL with an exception set. Requires the GIL.</summary>
    internal static Interop.PyObject* ToPythonRaw(Exception exception, int depth)
    {
        if (exception is PythonException pe)
        {
            var original = pe.Value.Handle;
            CPython.Py_IncRef(original);
            return original;
        }
        if (s_make is null) throw new InvalidOperationException("Python is not initialized.");
        string kind = exception switch
        {
            OperationCanceledException => "cancelled",
            TimeoutException => "timeout",
            ArgumentOutOfRangeException => "value",
            ArgumentException => "value",
            NotSupportedException or NotImplementedException => "notimpl",
            KeyNotFoundException => "key",
            IndexOutOfRangeException => "index",
            InvalidCastException => "type",
            _ => "",
        };
        var handle = ManagedHandle.CreateRaw(exception);
        if (handle == null) return null;
        object?[] args = [kind, exception.GetType().FullName, exception.Message, exception.StackTrace ?? ""];
        var argv = stackalloc Interop.PyObject*[6];
        int converted = 0;
        Interop.PyObject* exc;
        try
        {
            for (; converted < 4; converted++) argv[converted + 1] = PyConvert.ToPythonRaw(args[converted]);
            argv[5] = handle;
            exc = PyObject.VectorcallRaw(s_make.Handle, argv + 1, 5);
        }
        finally
        {
            for (int i = 0; i < converted; i++) CPython.Py_DecRef(argv[i + 1]);
            CPython.Py_DecRef(handle);
        }
        if (exc != null && exception.InnerException is { } inner && depth < 32)
        {
            var cause = ToPythonRaw(inner, depth + 1);
            if (cause != null) CPython.PyException_SetCause(exc, cause); // steals
            else CPython.PyErr_Clear();
        }
        return exc;
    }

    /// <summary>The .NET exception a Python exception object carries, if it came from .NET.
    /// Never leaves an error set. Requires the GIL.</summary>
    internal static Exception? TryUnwrapDotNet(Interop.PyObject* exc)
    {
        if (s_make is null) return null;
        var handle = PyObject.GetAttrRaw(exc, "_dotnet_handle");
        if (handle == null)
        {
            CPython.PyErr_Clear();
            return null;
        }
        try { return ManagedHandle.GetRaw(handle) as Exception; }
        finally { CPython.Py_DecRef(handle); }
    }
}
