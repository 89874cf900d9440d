using System.Runtime.CompilerServices;
using System.Text;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// A Python exception surfaced in .NET: the exception object itself, its type, message and
/// formatted traceback; <c>__cause__</c> (or an unsuppressed <c>__context__</c>) becomes
/// <see cref="Exception.InnerException"/>. Raising it back into Python re-raises the very same object.
/// </summary>
public class PythonException : Exception
{
    private const int MaxChainDepth = 32;

    internal PythonException(PyObject value, string typeName, string typeModule, string pythonMessage, string? traceback, Exception? inner)
        : base(pythonMessage.Length == 0 ? typeName : $"{typeName}: {pythonMessage}", inner)
    {
        Value = value;
        PythonTypeName = typeName;
        PythonTypeModule = typeModule;
        PythonMessage = pythonMessage;
        PythonTraceback = traceback;
    }

    /// <summary>The Python exception object (owned by this exception).</summary>
    public PyObject Value { get; }

    /// <summary>The exception type's <c>__qualname__</c>, e.g. <c>ValueError</c>.</summary>
    public string PythonTypeName { get; }

    /// <summary>The exception type's <c>__module__</c>, e.g. <c>builtins</c>.</summary>
    public string PythonTypeModule { get; }

    /// <summary><c>str(exception)</c>.</summary>
    public string PythonMessage { get; }

    /// <summary>"Traceback (most recent call last): ..." as Python prints it, or null without a traceback.</summary>
    public string? PythonTraceback { get; }

    public override string? StackTrace =>
        PythonTraceback is null ? base.StackTrace : PythonTraceback + Environment.NewLine + "--- .NET ---" + Environment.NewLine + base.StackTrace;

    /// <summary>
    /// Takes the pending Python error (clearing it) and returns the exception to throw. With no
    /// error set, returns a SystemError ("error return without exception set"), as CPython does.
    /// Requires the GIL.
    /// </summary>
    internal static unsafe Exception Fetch()
    {
        var exc = FetchRaw();
        if (exc == null)
        {
            fixed (byte* m = "error return without exception set"u8)
                CPython.PyErr_SetString(CPython.PyExc_SystemError, m);
            exc = FetchRaw();
        }
        return FromPython(exc, 0);
    }

    /// <summary>The pending exception as one normalized object with its traceback attached
    /// (new reference), or NULL when none is set. Clears it. Requires the GIL.</summary>
    internal static unsafe Interop.PyObject* FetchRaw()
    {
        if (PythonLibrary.Minor >= 12)
            return CPython.PyErr_GetRaisedException();
        Interop.PyObject* type, value, tb;
        CPython.PyErr_Fetch(&type, &value, &tb);
        if (type == null) return null;
        CPython.PyErr_NormalizeException(&type, &value, &tb);
        if (tb != null)
        {
            CPython.PyException_SetTraceback(value, tb);
            CPython.Py_DecRef(tb);
        }
        CPython.Py_DecRef(type);
        return value;
    }

    /// <summary>Raises <paramref name="exc"/> (a new reference, stolen) as the pending Python error. Requires the GIL.</summary>
    internal static unsafe void RestoreRaw(Interop.PyObject* exc)
    {
        if (PythonLibrary.Minor >= 12)
        {
            CPython.PyErr_SetRaisedException(exc);
            return;
        }
        var type = (Interop.PyObject*)CPython.Py_TYPE(exc);
        CPython.Py_IncRef(type);
        CPython.PyErr_Restore(type, exc, CPython.PyException_GetTraceback(exc));
    }

    /// <summary>Builds the .NET exception for a Python exception object (new reference, stolen). Requires the GIL.</summary>
    internal static unsafe Exception FromPython(Interop.PyObject* exc, int depth)
    {
        if (ExceptionBridge.TryUnwrapDotNet(exc) is { } original)
        {
            CPython.Py_DecRef(exc);
            return original;
        }
        var value = PyObject.Steal(exc);
        var type = (Interop.PyObject*)CPython.Py_TYPE(exc);
        string typeName = AttrString(type, "__qualname__") ?? "<unknown>";
        string module = AttrString(type, "__module__") ?? "builtins";
        string message = StrOrPlaceholder(exc);
        string? traceback = FormatTraceback(exc);
        Exception? inner = null;
        if (depth < MaxChainDepth)
        {
            var cause = CPython.PyException_GetCause(exc);
            if (cause == null && !SuppressesContext(exc))
                cause = CPython.PyException_GetContext(exc);
            if (cause != null) inner = FromPython(cause, depth + 1);
        }

        if (Matches(exc, CPython.PyExc_KeyboardInterrupt))
            return new PythonKeyboardInterruptException(value, typeName, module, message, traceback, inner);
        if (Matches(exc, CPython.PyExc_SystemExit))
            return new PythonSystemExitException(value, typeName, module, message, traceback, inner);
        if (Matches(exc, CPython.PyExc_StopIteration))
            return new PythonStopIterationException(value, typeName, module, message, traceback, inner);
        if (Matches(exc, CPython.PyExc_MemoryError))
            return new PythonMemoryErrorException(value, typeName, module, message, traceback, inner);
        return new PythonException(value, typeName, module, message, traceback, inner);
    }

    private static unsafe bool Matches(Interop.PyObject* exc, Interop.PyObject* type) =>
        CPython.PyErr_GivenExceptionMatches(exc, type) != 0;

    private static unsafe bool SuppressesContext(Interop.PyObject* exc)
    {
        fixed (byte* n = "__suppress_context__"u8)
        {
            var v = CPython.PyObject_GetAttrString(exc, n);
            if (v == null) { CPython.PyErr_Clear(); return false; }
            bool suppress = v == CPython.Py_True;
            CPython.Py_DecRef(v);
            return suppress;
        }
    }

    private static unsafe string? AttrString(Interop.PyObject* o, string name)
    {
        var attr = PyObject.GetAttrRaw(o, name);
        if (attr == null) { CPython.PyErr_Clear(); return null; }
        try { return PyConvert.StrRaw(attr); }
        finally { CPython.Py_DecRef(attr); }
    }

    private static unsafe string StrOrPlaceholder(Interop.PyObject* o)
    {
        var s = CPython.PyObject_Str(o);
        if (s == null) { CPython.PyErr_Clear(); return "<str() failed>"; }
        try { return PyConvert.UnicodeToString(s) ?? "<str() failed>"; }
        finally { CPython.Py_DecRef(s); }
    }

    private static PyObject? s_formatTb;

    private static unsafe string? FormatTraceback(Interop.PyObject* exc)
    {
        var tb = CPython.PyException_GetTraceback(exc);
        if (tb == null) return null;
        try
        {
            if (s_formatTb is null)
            {
                using var module = PyObject.StealOrThrow(ImportRaw("traceback"));
                s_formatTb = module.GetAttr("format_tb");
                ObjectFinalizationHooks.Register(static () => { s_formatTb?.Dispose(); s_formatTb = null; });
            }
            var lines = CPython.PyObject_VectorcallDict(s_formatTb.Handle, &tb, 1, null);
            if (lines == null) { CPython.PyErr_Clear(); return null; }
            try
            {
                var sb = new StringBuilder("Traceback (most recent call last):").Append('\n');
                nint n = CPython.PyList_Size(lines);
                for (nint i = 0; i < n; i++)
                    sb.Append(PyConvert.UnicodeToString(CPython.PyList_GetItem(lines, i)));
                return sb.ToString().TrimEnd('\n');
            }
            finally { CPython.Py_DecRef(lines); }
        }
        finally { CPython.Py_DecRef(tb); }
    }

    private static unsafe Interop.PyObject* ImportRaw(string name)
    {
        fixed (byte* n = PythonLibrary.Utf8Z(name)) return CPython.PyImport_ImportModule(n);
    }

    /// <summary>Throws the pending Python exception when <paramref name="result"/> is -1. Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ThrowIfMinusOne(int result)
    {
        if (result == -1) throw Fetch();
    }

    /// <summary>Throws if a Python error is pending (for APIs whose error value is also a valid result).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void ThrowIfOccurred()
    {
        if (CPython.PyErr_Occurred() != null) throw Fetch();
    }
}

/// <summary>Python's KeyboardInterrupt (Ctrl-C).</summary>
public sealed class PythonKeyboardInterruptException : PythonException
{
    internal PythonKeyboardInterruptException(PyObject v, string t, string m, string msg, string? tb, Exception? inner) : base(v, t, m, msg, tb, inner) { }
}

/// <summary>Python's SystemExit; <see cref="Code"/> is <c>exc.code</c>.</summary>
public sealed class PythonSystemExitException : PythonException
{
    internal PythonSystemExitException(PyObject v, string t, string m, string msg, string? tb, Exception? inner) : base(v, t, m, msg, tb, inner) { }

    /// <summary>The exit code (None becomes 0, a non-integer becomes 1, as the interpreter does).</summary>
    public int Code
    {
        get
        {
            using var code = Value.GetAttr("code");
            if (code.IsNone) return 0;
            return code.TryConvert(out long c) ? (int)c : 1;
        }
    }
}

/// <summary>Python's StopIteration; <see cref="StopValue"/> is <c>exc.value</c>.</summary>
public sealed class PythonStopIterationException : PythonException
{
    internal PythonStopIterationException(PyObject v, string t, string m, string msg, string? tb, Exception? inner) : base(v, t, m, msg, tb, inner) { }

    public PyObject StopValue => Value.GetAttr("value");
}

/// <summary>Python's MemoryError.</summary>
public sealed class PythonMemoryErrorException : PythonException
{
    internal PythonMemoryErrorException(PyObject v, string t, string m, string msg, string? tb, Exception? inner) : base(v, t, m, msg, tb, inner) { }
}
