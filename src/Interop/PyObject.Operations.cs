using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

// The everyday operations. Each takes the GIL for itself (a thread-static increment when the
// caller already holds it), so they can be called from any thread.
public sealed unsafe partial class PyObject
{
    /// <summary>True when this is Python's None.</summary>
    public bool IsNone => Handle == CPython.Py_None;

    /// <summary>The type's <c>__qualname__</c>.</summary>
    public string TypeName
    {
        get
        {
            using var gil = Use();
            return PyConvert.TypeName(Handle);
        }
    }

    /// <summary><c>getattr(self, name)</c>: a new owned reference; a missing attribute throws a
    /// <see cref="PythonException"/> for AttributeError.</summary>
    public PyObject GetAttr(string name) => GetAttr<PyObject>(name);

    /// <summary><c>hasattr(self, name)</c>, except that an error other than AttributeError (a
    /// raising property) is thrown, not swallowed.</summary>
    public bool HasAttr(string name)
    {
        using var gil = Use();
        var attr = GetAttrRaw(Handle, name);
        if (attr != null) { CPython.Py_DecRef(attr); return true; }
        if (CPython.PyErr_ExceptionMatches(CPython.PyExc_AttributeError) != 0) { CPython.PyErr_Clear(); return false; }
        throw PythonException.Fetch();
    }

    /// <summary><c>setattr(self, name, value)</c>, with <paramref name="value"/> converted to
    /// Python (<see cref="PyConvert"/>).</summary>
    public void SetAttr(string name, object? value)
    {
        using var gil = Use();
        var n = Utf8Z.Encode(name, nameof(name));
        var v = PyConvert.ToPythonRaw(value);
        int rc;
        fixed (byte* p = n) rc = CPython.PyObject_SetAttrString(Handle, p, v);
        CPython.Py_DecRef(v);
        PythonException.ThrowIfMinusOne(rc);
    }

    /// <summary>New reference or NULL with an exception set; throws ArgumentException for a
    /// name C cannot carry (see <see cref="Utf8Z"/>). Requires the GIL.</summary>
    internal static NativePyObject* GetAttrRaw(NativePyObject* o, string name)
    {
        var z = Utf8Z.Encode(name, stackalloc byte[256], nameof(name));
        fixed (byte* p = z) return CPython.PyObject_GetAttrString(o, p);
    }

    /// <summary><c>self[key]</c>.</summary>
    public PyObject this[object key]
    {
        get => GetItem<PyObject>(key);
        set => SetItem(key, value);
    }

    /// <summary><c>self[key] = value</c>, both converted with <see cref="PyConvert.ToPython"/>.</summary>
    public void SetItem(object key, object? value)
    {
        using var gil = Use();
        var k = PyConvert.ToPythonRaw(key);
        NativePyObject* v;
        try { v = PyConvert.ToPythonRaw(value); }
        catch { CPython.Py_DecRef(k); throw; }
        int rc = CPython.PyObject_SetItem(Handle, k, v);
        CPython.Py_DecRef(k);
        CPython.Py_DecRef(v);
        PythonException.ThrowIfMinusOne(rc);
    }

    /// <summary><c>len(self)</c>.</summary>
    public long Length
    {
        get
        {
            using var gil = Use();
            nint n = CPython.PyObject_Size(Handle);
            if (n == -1) throw PythonException.Fetch();
            return n;
        }
    }

    /// <summary>Python truthiness: <c>bool(self)</c>.</summary>
    public bool IsTrue()
    {
        using var gil = Use();
        int r = CPython.PyObject_IsTrue(Handle);
        PythonException.ThrowIfMinusOne(r);
        return r == 1;
    }

    /// <summary><c>isinstance(self, type)</c>.</summary>
    public bool IsInstance(PyObject type)
    {
        using var gil = Use();
        int r = CPython.PyObject_IsInstance(Handle, type.Handle);
        PythonException.ThrowIfMinusOne(r);
        return r == 1;
    }

    /// <summary><c>self == other</c> in Python.</summary>
    public bool PyEquals(object? other)
    {
        using var gil = Use();
        var o = PyConvert.ToPythonRaw(other);
        int r = CPython.PyObject_RichCompareBool(Handle, o, CPython.Py_EQ);
        CPython.Py_DecRef(o);
        PythonException.ThrowIfMinusOne(r);
        return r == 1;
    }

    /// <summary><c>str(self)</c>; "&lt;disposed&gt;" or "&lt;finalized&gt;" when there is no object any more.</summary>
    public override string ToString()
    {
        if (_handle == 0) return "<disposed PyObject>";
        if (!PythonRuntime.IsInitialized) return "<PyObject after Python finalization>";
        using var gil = Use();
        return PyConvert.StrRaw(Handle);
    }

    /// <summary><c>repr(self)</c>.</summary>
    public string Repr()
    {
        using var gil = Use();
        var r = CPython.PyObject_Repr(Handle);
        if (r == null) throw PythonException.Fetch();
        try { return PyConvert.UnicodeToString(r)!; }
        finally { CPython.Py_DecRef(r); }
    }

    /// <summary>Converts to <typeparamref name="T"/> (see <see cref="PyConvert"/>).</summary>
    public T As<T>()
    {
        using var gil = Use();
        return PyConvert.ToClrRaw<T>(Handle);
    }

    /// <summary>Converts to <typeparamref name="T"/>, or returns false when the object is not of a matching kind.</summary>
    public bool TryConvert<T>(out T value)
    {
        using var gil = Use();
        try
        {
            value = PyConvert.ToClrRaw<T>(Handle);
            return true;
        }
        catch (Exception e) when (e is InvalidCastException or OverflowException or PythonException)
        {
            value = default!;
            return false;
        }
    }

    /// <summary>The .NET value (see <see cref="PyConvert.ToClr"/>).</summary>
    public object? ToClr() => PyConvert.ToClr(this);

    /// <summary>Iterates <c>iter(self)</c>, yielding owned items.</summary>
    public IEnumerable<PyObject> Iterate()
    {
        using var iterator = GetIter();
        while (iterator.Next() is { } item)
            yield return item;
    }

    /// <summary><c>iter(self)</c>.</summary>
    public PyObject GetIter()
    {
        using var gil = Use();
        return StealOrThrow(CPython.PyObject_GetIter(Handle));
    }

    /// <summary><c>next(self)</c> on an iterator; null at the end.</summary>
    public PyObject? Next()
    {
        using var gil = Use();
        var next = CPython.PyIter_Next(Handle);
        if (next != null) return Steal(next);
        PythonException.ThrowIfOccurred();
        return null;
    }

    // ---- Calls ------------------------------------------------------------------------------

    /// <summary>Positional vectorcall. args[-1] must be writable scratch. New reference or NULL. Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static NativePyObject* VectorcallRaw(NativePyObject* callable, NativePyObject** args, nint nargs)
    {
        nuint nargsf = (nuint)((ulong)nargs | CPython.PY_VECTORCALL_ARGUMENTS_OFFSET);
        // PyObject_Vectorcall is only a static inline function before 3.11; VectorcallDict with
        // no dict takes the same vectorcall path on every version, one call deeper.
        return PythonLibrary.Minor >= 11
            ? CPython.PyObject_Vectorcall(callable, args, nargsf, null)
            : CPython.PyObject_VectorcallDict(callable, args, nargsf, null);
    }

    /// <summary><c>self()</c>.</summary>
    public PyObject Call()
    {
        using var gil = Use();
        return StealOrThrow(CPython.PyObject_CallNoArgs(Handle));
    }

    /// <summary><c>self(*args)</c>, each argument converted with <see cref="PyConvert.ToPython"/>.</summary>
    public PyObject Call(params ReadOnlySpan<object?> args) => Invoke<NoArg, NoArg, NoArg, NoArg, NoArg, PyObject>(null, default, default, default, default, default, args, default);

    /// <summary><c>self(*args, **kwargs)</c>.</summary>
    /// <exception cref="ArgumentException">A keyword given twice.</exception>
    public PyObject Call(ReadOnlySpan<object?> args, IEnumerable<KeyValuePair<string, object?>> kwargs)
    {
        ArgumentNullException.ThrowIfNull(kwargs);
        var keywords = kwargs.Select(static kv => (kv.Key, kv.Value)).ToArray();
        return Invoke<NoArg, NoArg, NoArg, NoArg, NoArg, PyObject>(null, default, default, default, default, default, args, keywords);
    }

    /// <summary><c>self.name(*args)</c>.</summary>
    public PyObject CallMethod(string name, params ReadOnlySpan<object?> args) => Invoke<NoArg, NoArg, NoArg, NoArg, NoArg, PyObject>(MethodName(name), default, default, default, default, default, args, default);

    // The typed calls: positional arguments of their own types (converted without boxing, see
    // PyConvert), keyword arguments as ("name", value) pairs after them, the result converted to
    // TResult (PyObject: the owned result itself). One vectorcall, the arguments in a stack buffer,
    // no intermediate object the caller must release. A keyword given twice is an ArgumentException.

    /// <summary><c>self(**kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult Call<TResult>(params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<NoArg, NoArg, NoArg, NoArg, NoArg, TResult>(null, default, default, default, default, default, default, kwargs);

    /// <summary><c>self(a1, **kwargs)</c> converted to <typeparamref name="TResult"/>, with no intermediate PyObject.</summary>
    public TResult Call<T1, TResult>(T1 a1, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        kwargs.IsEmpty ? CallOne<T1, TResult>(a1) : Invoke<T1, NoArg, NoArg, NoArg, NoArg, TResult>(null, a1, default, default, default, default, default, kwargs);

    /// <summary>The one-argument call without keywords, the commonest of all, kept to its bare
    /// minimum (the general path's argument buffer cost it a third more: S6 1.28x the bare call
    /// went to 1.62x).</summary>
    private TResult CallOne<T1, TResult>(T1 a1)
    {
        using var gil = Use();
        var args = stackalloc NativePyObject*[2];
        args[1] = PyConvert.ToPythonRaw(a1);
        var r = VectorcallRaw(Handle, args + 1, 1);
        CPython.Py_DecRef(args[1]);
        return ConvertResult<TResult>(r);
    }

    /// <summary><c>self(a1, a2, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult Call<T1, T2, TResult>(T1 a1, T2 a2, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, NoArg, NoArg, NoArg, TResult>(null, a1, a2, default, default, default, default, kwargs);

    /// <summary><c>self(a1, a2, a3, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult Call<T1, T2, T3, TResult>(T1 a1, T2 a2, T3 a3, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, T3, NoArg, NoArg, TResult>(null, a1, a2, a3, default, default, default, kwargs);

    /// <summary><c>self(a1, a2, a3, a4, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult Call<T1, T2, T3, T4, TResult>(T1 a1, T2 a2, T3 a3, T4 a4, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, T3, T4, NoArg, TResult>(null, a1, a2, a3, a4, default, default, kwargs);

    /// <summary><c>self(a1, a2, a3, a4, a5, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult Call<T1, T2, T3, T4, T5, TResult>(T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, T3, T4, T5, TResult>(null, a1, a2, a3, a4, a5, default, kwargs);

    /// <summary><c>self.name(**kwargs)</c> converted to <typeparamref name="TResult"/>: the method is
    /// called without a bound method object, and nothing is left for the caller to release.</summary>
    public TResult CallMethod<TResult>(string name, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<NoArg, NoArg, NoArg, NoArg, NoArg, TResult>(MethodName(name), default, default, default, default, default, default, kwargs);

    /// <summary><c>self.name(a1, **kwargs)</c> converted to <typeparamref name="TResult"/>,
    /// e.g. <c>math.CallMethod&lt;double, double&gt;("sqrt", 2.0)</c>.</summary>
    public TResult CallMethod<T1, TResult>(string name, T1 a1, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, NoArg, NoArg, NoArg, NoArg, TResult>(MethodName(name), a1, default, default, default, default, default, kwargs);

    /// <summary><c>self.name(a1, a2, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult CallMethod<T1, T2, TResult>(string name, T1 a1, T2 a2, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, NoArg, NoArg, NoArg, TResult>(MethodName(name), a1, a2, default, default, default, default, kwargs);

    /// <summary><c>self.name(a1, a2, a3, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult CallMethod<T1, T2, T3, TResult>(string name, T1 a1, T2 a2, T3 a3, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, T3, NoArg, NoArg, TResult>(MethodName(name), a1, a2, a3, default, default, default, kwargs);

    /// <summary><c>self.name(a1, a2, a3, a4, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult CallMethod<T1, T2, T3, T4, TResult>(string name, T1 a1, T2 a2, T3 a3, T4 a4, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, T3, T4, NoArg, TResult>(MethodName(name), a1, a2, a3, a4, default, default, kwargs);

    /// <summary><c>self.name(a1, a2, a3, a4, a5, **kwargs)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult CallMethod<T1, T2, T3, T4, T5, TResult>(string name, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, params ReadOnlySpan<(string Name, object? Value)> kwargs) =>
        Invoke<T1, T2, T3, T4, T5, TResult>(MethodName(name), a1, a2, a3, a4, a5, default, kwargs);

    // Invoke takes a null name for a plain call: a null from the caller must not become one.
    private static string MethodName(string name) => name ?? throw new ArgumentNullException(nameof(name));

    /// <summary>A parameter slot of <see cref="Invoke"/> that a shorter overload leaves unused; the
    /// typeof tests on it fold away when the JIT specializes the call.</summary>
    private readonly struct NoArg;

    /// <summary>Every call goes through here: typed arguments (the used slots), then boxed ones,
    /// then keywords, converted into a stack buffer and passed by one vectorcall. Inlined into each
    /// overload so the unused slots and their tests vanish (the 1-argument call measured no slower
    /// than the hand-written one it replaced).</summary>
    [SkipLocalsInit, MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TResult Invoke<T1, T2, T3, T4, T5, TResult>(string? method, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5,
        ReadOnlySpan<object?> more, ReadOnlySpan<(string Name, object? Value)> kwargs)
    {
        int typed = (typeof(T1) != typeof(NoArg) ? 1 : 0) + (typeof(T2) != typeof(NoArg) ? 1 : 0) + (typeof(T3) != typeof(NoArg) ? 1 : 0)
            + (typeof(T4) != typeof(NoArg) ? 1 : 0) + (typeof(T5) != typeof(NoArg) ? 1 : 0);
        using var gil = Use();
        var args = new CallArguments(stackalloc nint[CallArguments.StackSlots], typed + more.Length + kwargs.Length);
        try
        {
            if (method != null) args.SetMethod(method);
            if (typeof(T1) != typeof(NoArg)) args.Add(a1);
            if (typeof(T2) != typeof(NoArg)) args.Add(a2);
            if (typeof(T3) != typeof(NoArg)) args.Add(a3);
            if (typeof(T4) != typeof(NoArg)) args.Add(a4);
            if (typeof(T5) != typeof(NoArg)) args.Add(a5);
            if (!more.IsEmpty) args.AddAll(more);
            if (!kwargs.IsEmpty) args.AddKeywords(kwargs);
        }
        catch
        {
            args.Release();
            throw;
        }
        return ConvertResult<TResult>(args.Invoke(Handle));
    }

    /// <summary><c>getattr(self, name)</c> converted to <typeparamref name="T"/> (PyObject: the owned
    /// attribute), with nothing left for the caller to release.</summary>
    public T GetAttr<T>(string name)
    {
        using var gil = Use();
        return ConvertResult<T>(GetAttrRaw(Handle, name));
    }

    /// <summary><c>self[key]</c> converted to <typeparamref name="T"/>, e.g. a global from the dict
    /// <see cref="Py.Run"/> returns: <c>globals.GetItem&lt;long&gt;("x")</c>.</summary>
    public T GetItem<T>(object key)
    {
        using var gil = Use();
        var k = PyConvert.ToPythonRaw(key);
        var r = CPython.PyObject_GetItem(Handle, k);
        CPython.Py_DecRef(k);
        return ConvertResult<T>(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TResult ConvertResult<TResult>(NativePyObject* r)
    {
        if (r == null) throw PythonException.Fetch();
        if (typeof(TResult) == typeof(PyObject)) return (TResult)(object)Steal(r);
        try { return PyConvert.ToClrRaw<TResult>(r); }
        finally { CPython.Py_DecRef(r); }
    }
}
