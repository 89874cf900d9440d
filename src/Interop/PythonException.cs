using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
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

    /// <summary>Python's traceback first (when there is one), then the .NET stack trace under a
    /// "--- .NET ---" line.</summary>
    public override string? StackTrace =>
        PythonTraceback is null ? base.StackTrace : PythonTraceback + Environment.NewLine + "--- .NET ---" + Environment.NewLine + base.StackTrace;

    /// <summary>
    /// Takes the pending Python error (clearing it) and returns the exception to throw. With no
    /// error set, returns a SystemError ("error return without exception set"), as CPython does.
    /// A .NET exception that went through Python and comes back is not returned but thrown from
    /// here, the same object with its original stack trace kept (callers write
    /// <c>throw PythonException.Fetch()</c>, and a plain <c>throw</c> of it would replace that trace).
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
        var e = FromPython(exc, 0);
        if (e is not PythonException) ExceptionDispatchInfo.Throw(e);
        return e;
    }

    /// <summary>The pending exception as one normalized object with its traceback attached
    /// (new reference), or NULL when none is set. Clears it. Requires the GIL.</summary>
    internal static unsafe NativePyObject* FetchRaw()
    {
        if (PythonLibrary.Minor >= 12)
            return CPython.PyErr_GetRaisedException();
        NativePyObject* type, value, tb;
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
    internal static unsafe void RestoreRaw(NativePyObject* exc)
    {
        if (PythonLibrary.Minor >= 12)
        {
            CPython.PyErr_SetRaisedException(exc);
            return;
        }
        var type = (NativePyObject*)CPython.Py_TYPE(exc);
        CPython.Py_IncRef(type);
        CPython.PyErr_Restore(type, exc, CPython.PyException_GetTraceback(exc));
    }

    /// <summary>
    /// Builds the .NET exception for a Python exception object (new reference, stolen). Never
    /// throws for a hostile exception and never translates another one: a field whose reading
    /// raises (a metaclass property, a <c>__str__</c> raising the very exception being read) is
    /// reported in place as "&lt;__module__ raised Boom&gt;". The <c>__cause__</c>/<c>__context__</c>
    /// chain stops at <see cref="MaxChainDepth"/> or where it comes back on itself. Requires the GIL.
    /// </summary>
    internal static unsafe Exception FromPython(NativePyObject* exc, int depth)
    {
        Span<nint> chain = stackalloc nint[MaxChainDepth + 1];
        return FromPython(exc, chain, Math.Clamp(depth, 0, MaxChainDepth));
    }

    private static unsafe Exception FromPython(NativePyObject* exc, Span<nint> chain, int depth)
    {
        if (ExceptionBridge.TryUnwrapDotNet(exc) is { } original)
        {
            CPython.Py_DecRef(exc);
            return original;
        }
        var value = PyObject.Steal(exc);
        var type = (NativePyObject*)CPython.Py_TYPE(exc);
        string typeName = TypeField(type, "__qualname__", missing: "<unknown>");
        string module = TypeField(type, "__module__", missing: "builtins");
        string message = StrOrPlaceholder(exc);
        string? traceback = FormatTraceback(exc);
        chain[depth] = (nint)exc;
        Exception? inner = null;
        if (depth < MaxChainDepth)
        {
            var cause = CPython.PyException_GetCause(exc);
            if (cause == null && !SuppressesContext(exc))
                cause = CPython.PyException_GetContext(exc);
            // A chain that comes back on itself ends there, as Python's own traceback printing does.
            if (cause != null && chain[..(depth + 1)].Contains((nint)cause)) { CPython.Py_DecRef(cause); cause = null; }
            if (cause != null) inner = FromPython(cause, chain, depth + 1);
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

    private static unsafe bool Matches(NativePyObject* exc, NativePyObject* type) =>
        CPython.PyErr_GivenExceptionMatches(exc, type) != 0;

    private static unsafe bool SuppressesContext(NativePyObject* exc)
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

    /// <summary>str(type.name), or what went wrong reading it. Never throws, leaves no error set.</summary>
    private static unsafe string TypeField(NativePyObject* type, string name, string missing)
    {
        var attr = PyObject.GetAttrRaw(type, name);
        if (attr == null)
        {
            if (CPython.PyErr_ExceptionMatches(CPython.PyExc_AttributeError) == 0) return Raised(name);
            CPython.PyErr_Clear();
            return missing;
        }
        try
        {
            if (PyConvert.IsStr(attr)) return PyConvert.TryUnicodeToString(attr) ?? $"<{name} unreadable>";
            var s = CPython.PyObject_Str(attr);
            if (s == null) return Raised(name);
            try { return PyConvert.TryUnicodeToString(s) ?? $"<{name} unreadable>"; }
            finally { CPython.Py_DecRef(s); }
        }
        finally { CPython.Py_DecRef(attr); }
    }

    private static unsafe string StrOrPlaceholder(NativePyObject* o)
    {
        var s = CPython.PyObject_Str(o);
        if (s == null) return Raised("str()");
        try { return PyConvert.TryUnicodeToString(s) ?? "<str() unreadable>"; }
        finally { CPython.Py_DecRef(s); }
    }

    /// <summary>"&lt;what raised TypeName&gt;" for the pending error, which it clears. Reads only
    /// the raised exception's type name, by a path that runs no Python code where the C API allows.</summary>
    private static unsafe string Raised(string what)
    {
        var pending = FetchRaw();
        if (pending == null) return $"<{what} failed>";
        try { return $"<{what} raised {ExceptionTypeName(pending) ?? "an exception"}>"; }
        finally { CPython.Py_DecRef(pending); }
    }

    private static unsafe string? ExceptionTypeName(NativePyObject* exc)
    {
        var type = CPython.Py_TYPE(exc);
        NativePyObject* name;
        if (PythonLibrary.Minor >= 11)
            name = CPython.PyType_GetName(type);
        else
        {
            // Before 3.11: the generic lookup finds type's own __name__ descriptor, skipping a
            // metaclass __getattribute__ (which may raise the very exception being described).
            NativePyObject* key;
            fixed (byte* k = "__name__"u8) key = CPython.PyUnicode_InternFromString(k);
            if (key == null) { CPython.PyErr_Clear(); return null; }
            name = CPython.PyObject_GenericGetAttr((NativePyObject*)type, key);
            CPython.Py_DecRef(key);
        }
        if (name == null) { CPython.PyErr_Clear(); return null; }
        try { return PyConvert.IsStr(name) ? PyConvert.TryUnicodeToString(name) : null; }
        finally { CPython.Py_DecRef(name); }
    }

    private static PyObject? s_formatTb;

    /// <summary>traceback.format_tb (borrowed), or NULL with no error set when it cannot be had
    /// (the module may be missing or replaced: translation must go on without it).</summary>
    private static unsafe NativePyObject* FormatTb()
    {
        if (s_formatTb is { } cached) return cached.Handle;
        NativePyObject* module;
        fixed (byte* n = "traceback"u8) module = CPython.PyImport_ImportModule(n);
        if (module == null) { CPython.PyErr_Clear(); return null; }
        NativePyObject* f;
        fixed (byte* n = "format_tb"u8) f = CPython.PyObject_GetAttrString(module, n);
        CPython.Py_DecRef(module);
        if (f == null) { CPython.PyErr_Clear(); return null; }
        // The import may have let another thread take the GIL and get here first.
        var created = PyObject.Steal(f);
        if (Interlocked.CompareExchange(ref s_formatTb, created, null) is { } winner)
        {
            created.Dispose();
            return winner.Handle;
        }
        ObjectFinalizationHooks.Register(static () => { s_formatTb?.Dispose(); s_formatTb = null; });
        return f;
    }

    /// <summary>The formatted traceback, or null when there is none or formatting fails. Never throws.</summary>
    private static unsafe string? FormatTraceback(NativePyObject* exc)
    {
        var tb = CPython.PyException_GetTraceback(exc);
        if (tb == null) return null;
        try
        {
            var formatTb = FormatTb();
            if (formatTb == null) return null;
            var lines = CPython.PyObject_VectorcallDict(formatTb, &tb, 1, null);
            if (lines == null) { CPython.PyErr_Clear(); return null; }
            try
            {
                if ((CPython.PyType_GetFlags(CPython.Py_TYPE(lines)) & CPython.Py_TPFLAGS_LIST_SUBCLASS) == 0) return null;
                var sb = new StringBuilder("Traceback (most recent call last):").Append('\n');
                nint n = CPython.PyList_Size(lines);
                for (nint i = 0; i < n; i++)
                {
                    var line = CPython.PyList_GetItem(lines, i);
                    if (line != null && PyConvert.IsStr(line)) sb.Append(PyConvert.TryUnicodeToString(line));
                }
                return sb.ToString().TrimEnd('\n');
            }
            finally { CPython.Py_DecRef(lines); }
        }
        finally { CPython.Py_DecRef(tb); }
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

    /// <summary>The value the generator or coroutine returned (<c>exc.value</c>), a new owned
    /// reference.</summary>
    public PyObject StopValue => Value.GetAttr("value");
}

/// <summary>Python's MemoryError.</summary>
public sealed class PythonMemoryErrorException : PythonException
{
    internal PythonMemoryErrorException(PyObject v, string t, string m, string msg, string? tb, Exception? inner) : base(v, t, m, msg, tb, inner) { }
}
