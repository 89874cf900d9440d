using System.Text;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// .NET exceptions into Python: a Python exception whose message names the .NET type and
/// message, with <c>dotnet_type</c>, <c>dotnet_message</c>, <c>dotnet_stack_trace</c> attributes
/// (and a note on 3.11+). TimeoutException → TimeoutError, ArgumentException → ValueError,
/// NotSupported/NotImplemented → NotImplementedError, KeyNotFoundException → KeyError,
/// InvalidCastException → TypeError, IndexOutOfRange/ArgumentOutOfRange → IndexError/ValueError,
/// InsufficientExecutionStackException → RecursionError; OperationCanceledException →
/// <c>asyncioraw.DotNetCancelledError</c>, an ordinary Exception (a .NET timeout is not a
/// cancellation Python asked for; the asyncio layer cancels the future when Python did); anything
/// else → <c>asyncioraw.DotNetError</c>. A .NET exception that comes back from Python is the same
/// object; a <see cref="PythonException"/> raised into Python is its original Python object, and so
/// is the CancelledError inside the OperationCanceledException .NET saw for a cancelled awaitable.
/// A getter that throws (Message, StackTrace) is reported in its place; conversion never throws.
/// </summary>
public static unsafe class ExceptionBridge
{
    internal const string ModuleName = "asyncioraw";

    // Every copy of this library in the process (each NativeAOT module carries its own, with its
    // own .NET runtime) uses the first copy's module, so that `except asyncioraw.DotNetError`
    // catches what any of them raises. The classes and _make hold no .NET state (the .NET
    // exception rides in a capsule only its own copy opens, see ManagedHandle), so sharing them is
    // safe; a copy that speaks another protocol registers its own module instead.
    private const long Protocol = 1;

    private const string ModuleSource = """
        '''AsyncioRaw: .NET and asyncio in one process. Exceptions raised from .NET code.'''

        _protocol = 1  # ExceptionBridge.Protocol: what every copy of the library sharing this module expects

        class DotNetError(Exception):
            '''A .NET exception raised into Python. See dotnet_type, dotnet_message, dotnet_stack_trace.'''

        class DotNetValueError(DotNetError, ValueError): pass
        class DotNetTypeError(DotNetError, TypeError): pass
        class DotNetKeyError(DotNetError, KeyError): pass
        class DotNetIndexError(DotNetError, IndexError): pass
        class DotNetTimeoutError(DotNetError, TimeoutError): pass
        class DotNetNotImplementedError(DotNetError, NotImplementedError): pass
        class DotNetRecursionError(DotNetError, RecursionError): pass

        class DotNetCancelledError(DotNetError):
            '''A .NET OperationCanceledException that Python did not ask for (a timeout, a token of
            the .NET code's own). Not an asyncio.CancelledError: `except Exception` catches it.'''

        _kinds = {'value': DotNetValueError, 'type': DotNetTypeError, 'key': DotNetKeyError,
                  'index': DotNetIndexError, 'timeout': DotNetTimeoutError,
                  'notimpl': DotNetNotImplementedError, 'recursion': DotNetRecursionError,
                  'cancelled': DotNetCancelledError}

        def _make(kind, dotnet_type, message, stack, handle):
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
    internal static PyObject Module => s_module ?? throw new InvalidOperationException("Python is not initialized.");

    /// <summary>Creates the asyncioraw module, or takes the one another copy of the library
    /// registered in <c>sys.modules</c>. Requires the GIL.</summary>
    internal static void Initialize()
    {
        var module = Registered() ?? Py.CreateModule(ModuleName, ModuleSource, register: true);
        s_make = module.GetAttr("_make");
        s_module = module;
        ObjectFinalizationHooks.Register(static () =>
        {
            s_make?.Dispose(); s_make = null;
            s_module?.Dispose(); s_module = null;
        });
    }

    /// <summary>sys.modules['asyncioraw'] when a copy of this library with the same protocol made it,
    /// else null (nothing there, or a module of another origin, which ours then replaces).</summary>
    private static PyObject? Registered()
    {
        using var sys = Py.Import("sys");
        using var modules = sys.GetAttr("modules");
        var existing = modules.CallMethod("get", ModuleName);
        bool ours = false;
        try
        {
            if (!existing.IsNone && existing.HasAttr("_protocol") && existing.HasAttr("_make"))
            {
                using var protocol = existing.GetAttr("_protocol");
                ours = protocol.TryConvert(out long value) && value == Protocol;
            }
        }
        finally
        {
            if (!ours) existing.Dispose();
        }
        return ours ? existing : null;
    }

    /// <summary>The Python exception for <paramref name="exception"/> (the same Python object for a
    /// <see cref="PythonException"/>).</summary>
    public static PyObject ToPython(Exception exception)
    {
        using var gil = Gil.Acquire();
        return PyObject.StealOrThrow(ToPythonRaw(exception, 0));
    }

    /// <summary>Sets <paramref name="exception"/> as the pending Python error. Never throws and
    /// always leaves an error set (the converted exception, or the Python error that stopped the
    /// conversion). Requires the GIL.</summary>
    internal static void Raise(Exception exception)
    {
        try
        {
            var exc = ToPythonRaw(exception, 0);
            if (exc != null) PythonException.RestoreRaw(exc);
            else if (CPython.PyErr_Occurred() == null) SetFallbackError(exception, null);
        }
        catch (Exception e)
        {
            CallbackFailure.Report("raising a .NET exception into Python", e);
        }
    }

    /// <summary>New reference, or NULL with a Python exception set. Never throws. Requires the GIL.</summary>
    internal static NativePyObject* ToPythonRaw(Exception exception, int depth)
    {
        try
        {
            return Convert(exception, depth);
        }
        catch (Exception failure)
        {
            SetFallbackError(exception, failure);
            return null;
        }
    }

    private static NativePyObject* Convert(Exception exception, int depth)
    {
        var original = exception switch
        {
            PythonException pe => pe.Value,
            PythonCancelledException pc => pc.CancelledError.Value,
            _ => null,
        };
        if (original is { IsDisposed: false })
        {
            // A Python exception goes back as its own object (a disposed one is wrapped below instead).
            var h = original.Handle;
            CPython.Py_IncRef(h);
            return h;
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
            InsufficientExecutionStackException => "recursion",
            _ => "",
        };
        // Any getter may be overridden and throw: each field falls back on its own, so Python
        // always gets the exception (and, through the handle, the same .NET object back).
        string typeName = exception.GetType().FullName ?? exception.GetType().Name;
        string message, stack;
        try { message = exception.Message ?? ""; }
        catch (Exception e) { message = $"<Message threw {e.GetType().FullName}>"; }
        try { stack = exception.StackTrace ?? ""; }
        catch (Exception e) { stack = $"<StackTrace threw {e.GetType().FullName}>"; }

        var argv = stackalloc NativePyObject*[6];
        int converted = 0;
        NativePyObject* exc;
        try
        {
            argv[1] = PyConvert.FromString(kind); converted++;
            argv[2] = PyConvert.FromString(typeName); converted++;
            argv[3] = PyConvert.FromString(message); converted++;
            argv[4] = PyConvert.FromString(stack); converted++;
            argv[5] = ManagedHandle.CreateRaw(exception);
            if (argv[5] == null) return null;
            converted++;
            exc = PyObject.VectorcallRaw(s_make.Handle, argv + 1, 5);
        }
        finally
        {
            for (int i = 0; i < converted; i++) CPython.Py_DecRef(argv[i + 1]);
        }
        if (exc != null && exception.InnerException is { } inner && depth < 32)
        {
            var cause = ToPythonRaw(inner, depth + 1);
            if (cause != null) CPython.PyException_SetCause(exc, cause); // steals
            else CPython.PyErr_Clear();
        }
        return exc;
    }

    /// <summary>The last resort when not even a DotNetError could be made (no memory, Python
    /// finalizing): a RuntimeError naming the .NET type. Never throws.</summary>
    private static void SetFallbackError(Exception exception, Exception? failure)
    {
        string text = $"{exception.GetType().FullName}: the .NET exception could not be converted to Python"
            + (failure is null ? "" : $" ({failure.GetType().FullName})");
        CPython.PyErr_Clear();
        fixed (byte* m = Encoding.UTF8.GetBytes(text.Replace('\0', ' ') + "\0"))
            CPython.PyErr_SetString(CPython.PyExc_RuntimeError, m);
    }

    /// <summary>The .NET exception a Python exception object carries, if it came from .NET.
    /// Never leaves an error set. Requires the GIL.</summary>
    internal static Exception? TryUnwrapDotNet(NativePyObject* exc)
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

/// <summary>
/// What .NET code that awaited a Python awaitable sees when Python cancelled it: an
/// OperationCanceledException (so .NET cancellation handling applies) whose InnerException is the
/// Python CancelledError. Raised back into Python, it is that CancelledError again.
/// </summary>
internal sealed class PythonCancelledException : OperationCanceledException
{
    internal PythonCancelledException(string message, PythonException cancelledError)
        : base(message, cancelledError) => CancelledError = cancelledError;

    /// <summary>With the token of the Task it ends: thrown from that Task's body once the token is
    /// cancelled, the Task is Canceled (not Faulted) and awaiting it rethrows this very exception.</summary>
    internal PythonCancelledException(string message, PythonException cancelledError, CancellationToken token)
        : base(message, cancelledError, token) => CancelledError = cancelledError;

    public PythonException CancelledError { get; }
}
