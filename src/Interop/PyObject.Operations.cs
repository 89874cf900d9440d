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
    public PyObject GetAttr(string name)
    {
        using var gil = Use();
        return StealOrThrow(GetAttrRaw(Handle, name));
    }

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
        get
        {
            using var gil = Use();
            var k = PyConvert.ToPythonRaw(key);
            var r = CPython.PyObject_GetItem(Handle, k);
            CPython.Py_DecRef(k);
            return StealOrThrow(r);
        }
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
    public PyObject Call(params ReadOnlySpan<object?> args)
    {
        using var gil = Use();
        return StealOrThrow(CallRaw(Handle, args));
    }

    /// <summary><c>self(*args, **kwargs)</c>.</summary>
    public PyObject Call(ReadOnlySpan<object?> args, IEnumerable<KeyValuePair<string, object?>> kwargs)
    {
        using var gil = Use();
        var tuple = PyConvert.ToPythonRaw(new ArgsTuple(args.ToArray()));
        NativePyObject* dict = null;
        try
        {
            dict = CPython.PyDict_New();
            if (dict == null) throw PythonException.Fetch();
            foreach (var (key, value) in kwargs)
            {
                var name = Utf8Z.Encode(key, nameof(kwargs));
                var v = PyConvert.ToPythonRaw(value);
                int rc;
                fixed (byte* k = name) rc = CPython.PyDict_SetItemString(dict, k, v);
                CPython.Py_DecRef(v);
                PythonException.ThrowIfMinusOne(rc);
            }
            return StealOrThrow(CPython.PyObject_Call(Handle, tuple, dict));
        }
        finally
        {
            CPython.Py_DecRef(tuple);
            if (dict != null) CPython.Py_DecRef(dict);
        }
    }

    /// <summary><c>self.name(*args)</c>.</summary>
    public PyObject CallMethod(string name, params ReadOnlySpan<object?> args)
    {
        using var gil = Use();
        var method = GetAttrRaw(Handle, name);
        if (method == null) throw PythonException.Fetch();
        try { return StealOrThrow(CallRaw(method, args)); }
        finally { CPython.Py_DecRef(method); }
    }

    /// <summary><c>self()</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult Call<TResult>()
    {
        using var gil = Use();
        return ConvertResult<TResult>(CPython.PyObject_CallNoArgs(Handle));
    }

    /// <summary><c>self(a1)</c> converted to <typeparamref name="TResult"/>, with no intermediate PyObject.</summary>
    public TResult Call<T1, TResult>(T1 a1)
    {
        using var gil = Use();
        var args = stackalloc NativePyObject*[2];
        args[1] = PyConvert.ToPythonRaw(a1);
        var r = VectorcallRaw(Handle, args + 1, 1);
        CPython.Py_DecRef(args[1]);
        return ConvertResult<TResult>(r);
    }

    /// <summary><c>self(a1, a2)</c> converted to <typeparamref name="TResult"/>.</summary>
    public TResult Call<T1, T2, TResult>(T1 a1, T2 a2)
    {
        using var gil = Use();
        var args = stackalloc NativePyObject*[3];
        args[1] = PyConvert.ToPythonRaw(a1);
        try { args[2] = PyConvert.ToPythonRaw(a2); }
        catch { CPython.Py_DecRef(args[1]); throw; }
        var r = VectorcallRaw(Handle, args + 1, 2);
        CPython.Py_DecRef(args[1]);
        CPython.Py_DecRef(args[2]);
        return ConvertResult<TResult>(r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TResult ConvertResult<TResult>(NativePyObject* r)
    {
        if (r == null) throw PythonException.Fetch();
        if (typeof(TResult) == typeof(PyObject)) return (TResult)(object)Steal(r);
        try { return PyConvert.ToClrRaw<TResult>(r); }
        finally { CPython.Py_DecRef(r); }
    }

    /// <summary>New reference or NULL. Requires the GIL.</summary>
    internal static NativePyObject* CallRaw(NativePyObject* callable, ReadOnlySpan<object?> args)
    {
        const int StackArgs = 8;
        int n = args.Length;
        var buffer = stackalloc NativePyObject*[StackArgs + 1];
        NativePyObject** argv = n <= StackArgs ? buffer : (NativePyObject**)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(n + 1), (nuint)sizeof(nint));
        int converted = 0;
        try
        {
            for (; converted < n; converted++) argv[converted + 1] = PyConvert.ToPythonRaw(args[converted]);
            return VectorcallRaw(callable, argv + 1, n);
        }
        finally
        {
            for (int i = 0; i < converted; i++) CPython.Py_DecRef(argv[i + 1]);
            if (argv != buffer) System.Runtime.InteropServices.NativeMemory.Free(argv);
        }
    }

    // Wraps an argument array so PyConvert makes a tuple of it.
    private sealed class ArgsTuple(object?[] items) : ITuple
    {
        public object? this[int index] => items[index];
        public int Length => items.Length;
    }
}
