using System.Buffers;
using System.Collections;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Unicode;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// Conversions between .NET values and Python objects. .NET to Python: null → None, bool,
/// integers, <see cref="BigInteger"/>, floating point, string (lone surrogates kept), byte[] →
/// bytes, <see cref="ITuple"/> → tuple, <see cref="IDictionary"/> → dict, other enumerables →
/// list, <see cref="PyObject"/> as itself. Python to .NET (<see cref="ToClr"/>): None → null,
/// bool, int → long (BigInteger when larger), float → double, str, bytes → byte[], tuple →
/// object?[], list → List&lt;object?&gt;, dict → Dictionary&lt;object, object?&gt;, anything
/// else → PyObject.
/// Containers are converted to at most <see cref="MaxDepth"/> levels of nesting, and one that
/// contains itself is refused: either way the conversion throws (an
/// <see cref="InsufficientExecutionStackException"/> when too deep, an <see cref="ArgumentException"/>
/// for a cycle; raised into Python they are RecursionError and ValueError) instead of overflowing
/// the stack. Shared, non-cyclic references (the same list twice) convert as copies.
/// </summary>
public static unsafe class PyConvert
{
    /// <summary>How deep containers may nest in one conversion, either way: Python's default
    /// recursion limit. Scalars do not count; a thread whose stack runs short fails earlier.</summary>
    public const int MaxDepth = 1000;

    /// <summary>A new Python object for <paramref name="value"/>.</summary>
    public static PyObject ToPython(object? value)
    {
        using var gil = Gil.Acquire();
        return PyObject.Steal(ToPythonRaw(value));
    }

    /// <summary>The .NET value of <paramref name="obj"/> (see the class summary for the mapping).</summary>
    public static object? ToClr(PyObject obj)
    {
        using var gil = Gil.Acquire();
        return ToClrRaw(obj.Handle);
    }

    /// <summary>New reference. Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static NativePyObject* ToPythonRaw<T>(T value)
    {
        // typeof(T) tests on value types fold away at JIT time: one branch survives.
        if (typeof(T) == typeof(long)) return Check(CPython.PyLong_FromLongLong((long)(object)value!));
        if (typeof(T) == typeof(int)) return Check(CPython.PyLong_FromLongLong((int)(object)value!));
        if (typeof(T) == typeof(double)) return Check(CPython.PyFloat_FromDouble((double)(object)value!));
        if (typeof(T) == typeof(bool)) return CPython.PyBool_FromLong((bool)(object)value! ? 1 : 0);
        return ToPythonRaw((object?)value);
    }

    /// <summary>New reference. Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static NativePyObject* ToPythonRaw(object? value)
    {
        var path = default(ContainerPath<object>);
        return ToPythonRaw(value, ref path);
    }

    private static NativePyObject* ToPythonRaw(object? value, ref ContainerPath<object> path)
    {
        switch (value)
        {
            case null: CPython.Py_IncRef(CPython.Py_None); return CPython.Py_None;
            case PyObject o: { var h = o.Handle; CPython.Py_IncRef(h); return h; }
            case bool b: return CPython.PyBool_FromLong(b ? 1 : 0);
            case long l: return Check(CPython.PyLong_FromLongLong(l));
            case int i: return Check(CPython.PyLong_FromLongLong(i));
            case short s: return Check(CPython.PyLong_FromLongLong(s));
            case sbyte sb: return Check(CPython.PyLong_FromLongLong(sb));
            case byte by: return Check(CPython.PyLong_FromLongLong(by));
            case ushort us: return Check(CPython.PyLong_FromLongLong(us));
            case uint ui: return Check(CPython.PyLong_FromLongLong(ui));
            case ulong ul: return Check(CPython.PyLong_FromUnsignedLongLong(ul));
            case nint ni: return Check(CPython.PyLong_FromLongLong(ni));
            case BigInteger big: return FromBigInteger(big);
            case double d: return Check(CPython.PyFloat_FromDouble(d));
            case float f: return Check(CPython.PyFloat_FromDouble(f));
            case string str: return FromString(str);
            case char c: return FromString(c.ToString());
            case byte[] bytes: return FromBytes(bytes);
            case ReadOnlyMemory<byte> mem: return FromBytes(mem.Span);
            case ITuple tuple: return FromTuple(tuple, ref path);
            case IDictionary dict: return FromDictionary(dict, ref path);
            case IEnumerable items: return FromEnumerable(items, ref path);
            default:
                throw new ArgumentException($"A .NET {value.GetType()} has no Python conversion; pass a PyObject or a supported type.", nameof(value));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static NativePyObject* Check(NativePyObject* result) =>
        result != null ? result : throw PythonException.Fetch();

    // Strings up to this many UTF-8 bytes are encoded on the stack; longer ones are decoded
    // by Python from the UTF-16 chars themselves. A pooled buffer would do, but the shared pool
    // keeps what it is given: one 300 MB string would pin 900 MB for the life of the process.
    private const int StackUtf8Bytes = 512;

    internal static NativePyObject* FromString(string s)
    {
        if (Encoding.UTF8.GetMaxByteCount(s.Length) <= StackUtf8Bytes)
        {
            Span<byte> buffer = stackalloc byte[StackUtf8Bytes];
            var status = Utf8.FromUtf16(s, buffer, out _, out int written, replaceInvalidSequences: false);
            if (status == OperationStatus.Done)
                fixed (byte* p = buffer)
                    return Check(CPython.PyUnicode_FromStringAndSize(p, written));
        }
        // "surrogatepass" keeps lone surrogates (Python's str can hold them; UTF-8 cannot).
        // byteorder -1: little-endian, and a leading U+FEFF is kept as text, not taken as a BOM.
        int littleEndian = -1;
        fixed (char* p = s)
        fixed (byte* errors = "surrogatepass"u8)
            return Check(CPython.PyUnicode_DecodeUTF16((byte*)p, (nint)s.Length * 2, errors, &littleEndian));
    }

    private static NativePyObject* FromBytes(ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes) return Check(CPython.PyBytes_FromStringAndSize(p, bytes.Length));
    }

    private static NativePyObject* FromBigInteger(BigInteger value)
    {
        if (value >= long.MinValue && value <= long.MaxValue)
            return Check(CPython.PyLong_FromLongLong((long)value));
        // Hex is not subject to the int_max_str_digits limit (3.11+).
        string hex = (value.Sign < 0 ? "-0x" : "0x") + BigInteger.Abs(value).ToString("x", CultureInfo.InvariantCulture);
        fixed (byte* p = Utf8Z.Encode(hex, nameof(value))) return Check(CPython.PyLong_FromString(p, null, 16));
    }

    // The From* helpers release what they made in finally blocks, never catch-and-rethrow: a
    // rethrow inside a catch runs on top of the stack being unwound, so one per nesting level of
    // a deep conversion would itself overflow the stack the depth limit protects.

    private static NativePyObject* FromTuple(ITuple tuple, ref ContainerPath<object> path)
    {
        path.Enter(tuple);
        var t = Check(CPython.PyTuple_New(tuple.Length));
        try
        {
            for (int i = 0; i < tuple.Length; i++)
                CPython.PyTuple_SetItem(t, i, ToPythonRaw(tuple[i], ref path)); // steals
            path.Exit(tuple);
            var done = t;
            t = null;
            return done;
        }
        finally
        {
            if (t != null) CPython.Py_DecRef(t);
        }
    }

    private static NativePyObject* FromDictionary(IDictionary dict, ref ContainerPath<object> path)
    {
        path.Enter(dict);
        var d = Check(CPython.PyDict_New());
        NativePyObject* k = null, v = null;
        try
        {
            foreach (DictionaryEntry entry in dict)
            {
                k = ToPythonRaw(entry.Key, ref path);
                v = ToPythonRaw(entry.Value, ref path);
                int rc = CPython.PyDict_SetItem(d, k, v);
                CPython.Py_DecRef(k);
                k = null;
                CPython.Py_DecRef(v);
                v = null;
                PythonException.ThrowIfMinusOne(rc);
            }
            path.Exit(dict);
            var done = d;
            d = null;
            return done;
        }
        finally
        {
            if (k != null) CPython.Py_DecRef(k);
            if (d != null) CPython.Py_DecRef(d);
        }
    }

    private static NativePyObject* FromEnumerable(IEnumerable items, ref ContainerPath<object> path)
    {
        path.Enter(items);
        var list = Check(CPython.PyList_New(0));
        try
        {
            foreach (var item in items)
            {
                var o = ToPythonRaw(item, ref path);
                int rc = CPython.PyList_Append(list, o);
                CPython.Py_DecRef(o);
                PythonException.ThrowIfMinusOne(rc);
            }
            path.Exit(items);
            var done = list;
            list = null;
            return done;
        }
        finally
        {
            if (list != null) CPython.Py_DecRef(list);
        }
    }

    /// <summary>
    /// The containers a conversion is inside of, outermost first: deeper than
    /// <see cref="MaxDepth"/>, or a container met again inside itself, ends the conversion with
    /// an exception instead of a stack overflow. Costs nothing until a container is met, and one
    /// set only when containers nest. A thrown conversion is abandoned whole, so only the
    /// successful path needs <see cref="Exit"/>.
    /// </summary>
    private struct ContainerPath<TKey> where TKey : notnull
    {
        private int _depth;
        private TKey? _outermost;
        private HashSet<TKey>? _open;

        public void Enter(TKey container)
        {
            if (_depth >= MaxDepth || !RuntimeHelpers.TryEnsureSufficientExecutionStack())
                throw new InsufficientExecutionStackException(
                    $"The data nests deeper than {(_depth >= MaxDepth ? $"PyConvert.MaxDepth ({MaxDepth}) levels" : "this thread's stack allows")}; it cannot be converted.");
            if (_depth == 0) _outermost = container;
            else
            {
                _open ??= new HashSet<TKey>(typeof(TKey) == typeof(object) ? (IEqualityComparer<TKey>)(object)ReferenceEqualityComparer.Instance : null) { _outermost! };
                if (!_open.Add(container))
                    throw new ArgumentException($"The {Describe(container)} contains itself (a reference cycle); it cannot be converted.", ParamName(container));
            }
            _depth++;
        }

        public void Exit(TKey container)
        {
            _depth--;
            _open?.Remove(container);
        }

        private static string Describe(TKey container) =>
            container is nint p ? $"Python {TypeName((NativePyObject*)p)}" : $".NET {container.GetType()}";

        private static string ParamName(TKey container) => container is nint ? "obj" : "value";
    }

    private static nuint Flags(NativePyObject* o) => CPython.PyType_GetFlags(CPython.Py_TYPE(o));

    internal static bool IsInt(NativePyObject* o) => (Flags(o) & CPython.Py_TPFLAGS_LONG_SUBCLASS) != 0;
    internal static bool IsStr(NativePyObject* o) => (Flags(o) & CPython.Py_TPFLAGS_UNICODE_SUBCLASS) != 0;
    private static bool IsFloat(NativePyObject* o) =>
        CPython.Py_TYPE(o) == CPython.PyFloat_Type || CPython.PyType_IsSubtype(CPython.Py_TYPE(o), CPython.PyFloat_Type) != 0;

    /// <summary>Converts a borrowed object. Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static object? ToClrRaw(NativePyObject* o)
    {
        var path = default(ContainerPath<nint>);
        return ToClrRaw(o, ref path);
    }

    private static object? ToClrRaw(NativePyObject* o, ref ContainerPath<nint> path)
    {
        if (o == CPython.Py_None) return null;
        if (CPython.Py_TYPE(o) == CPython.PyBool_Type) return o == CPython.Py_True;
        nuint flags = Flags(o);
        if ((flags & CPython.Py_TPFLAGS_LONG_SUBCLASS) != 0)
        {
            int overflow;
            long v = CPython.PyLong_AsLongLongAndOverflow(o, &overflow);
            if (overflow != 0) return ToBigInteger(o);
            if (v == -1) PythonException.ThrowIfOccurred();
            return v;
        }
        if ((flags & CPython.Py_TPFLAGS_UNICODE_SUBCLASS) != 0) return UnicodeToString(o);
        if ((flags & CPython.Py_TPFLAGS_BYTES_SUBCLASS) != 0) return BytesToArray(o);
        if ((flags & CPython.Py_TPFLAGS_TUPLE_SUBCLASS) != 0)
        {
            path.Enter((nint)o);
            nint n = CPython.PyTuple_Size(o);
            var result = new object?[n];
            for (nint i = 0; i < n; i++) result[i] = ToClrRaw(CPython.PyTuple_GetItem(o, i), ref path);
            path.Exit((nint)o);
            return result;
        }
        if ((flags & CPython.Py_TPFLAGS_LIST_SUBCLASS) != 0)
        {
            path.Enter((nint)o);
            nint n = CPython.PyList_Size(o);
            var result = new List<object?>((int)n);
            // The size is read each time: converting an item can run Python code (a float
            // subclass' __float__ ...) that shrinks the list, and GetItem past the end is NULL.
            for (nint i = 0; i < CPython.PyList_Size(o); i++) result.Add(ToClrRaw(CPython.PyList_GetItem(o, i), ref path));
            path.Exit((nint)o);
            return result;
        }
        if ((flags & CPython.Py_TPFLAGS_DICT_SUBCLASS) != 0)
        {
            path.Enter((nint)o);
            var result = new Dictionary<object, object?>();
            nint pos = 0;
            NativePyObject* k, v;
            while (CPython.PyDict_Next(o, &pos, &k, &v) != 0)
                result[ToClrRaw(k, ref path) ?? throw new NotSupportedException("A dict with a None key has no .NET Dictionary form.")] = ToClrRaw(v, ref path);
            path.Exit((nint)o);
            return result;
        }
        if (IsFloat(o)) return AsDouble(o);
        return PyObject.FromBorrowed(o);
    }

    /// <summary>Converts a borrowed object to <typeparamref name="T"/>. Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T ToClrRaw<T>(NativePyObject* o)
    {
        if (typeof(T) == typeof(long)) return (T)(object)AsLong(o);
        if (typeof(T) == typeof(int)) return (T)(object)checked((int)AsLong(o));
        if (typeof(T) == typeof(double)) return (T)(object)AsDouble(o);
        if (typeof(T) == typeof(bool)) return (T)(object)AsBool(o);
        return ToClrRawSlow<T>(o);
    }

    private static T ToClrRawSlow<T>(NativePyObject* o)
    {
        if (typeof(T) == typeof(PyObject)) return (T)(object)PyObject.FromBorrowed(o);
        if (typeof(T) == typeof(string))
        {
            if (o == CPython.Py_None) return default!;
            if (!IsStr(o)) throw new InvalidCastException($"Cannot convert a Python {TypeName(o)} to string.");
            return (T)(object)UnicodeToString(o)!;
        }
        if (typeof(T) == typeof(BigInteger)) return (T)(object)ToBigInteger(o);
        if (typeof(T) == typeof(ulong))
        {
            ulong v = CPython.PyLong_AsUnsignedLongLong(o);
            if (v == ulong.MaxValue) PythonException.ThrowIfOccurred();
            return (T)(object)v;
        }
        if (typeof(T) == typeof(byte[])) return (T)(object)BytesToArray(o);
        if (typeof(T) == typeof(float)) return (T)(object)(float)AsDouble(o);
        var value = ToClrRaw(o);
        if (value is T t) return t;
        if (value is null && default(T) is null) return default!;
        (value as PyObject)?.Dispose();
        throw new InvalidCastException($"Cannot convert a Python {TypeName(o)} to {typeof(T)}.");
    }

    internal static long AsLong(NativePyObject* o)
    {
        if (!IsInt(o)) throw new InvalidCastException($"Cannot convert a Python {TypeName(o)} to an integer.");
        long v = CPython.PyLong_AsLongLong(o);
        if (v == -1) PythonException.ThrowIfOccurred();
        return v;
    }

    internal static double AsDouble(NativePyObject* o)
    {
        double v = CPython.PyFloat_AsDouble(o);
        if (v == -1.0) PythonException.ThrowIfOccurred();
        return v;
    }

    internal static bool AsBool(NativePyObject* o)
    {
        if (o == CPython.Py_True) return true;
        if (o == CPython.Py_False) return false;
        throw new InvalidCastException($"Cannot convert a Python {TypeName(o)} to bool; use IsTrue() for truthiness.");
    }

    internal static BigInteger ToBigInteger(NativePyObject* o)
    {
        if (!IsInt(o)) throw new InvalidCastException($"Cannot convert a Python {TypeName(o)} to BigInteger.");
        var hex = Check(CPython.PyNumber_ToBase(o, 16));
        string s;
        try { s = UnicodeToString(hex)!; }
        finally { CPython.Py_DecRef(hex); }
        bool negative = s[0] == '-';
        var digits = s.AsSpan(negative ? 3 : 2);
        var magnitude = BigInteger.Parse("0" + digits.ToString(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        return negative ? -magnitude : magnitude;
    }

    /// <summary>A str object's text (borrowed); lone surrogates are kept. Requires the GIL.</summary>
    internal static string? UnicodeToString(NativePyObject* s)
    {
        nint size;
        byte* utf8 = CPython.PyUnicode_AsUTF8AndSize(s, &size);
        if (utf8 != null) return Encoding.UTF8.GetString(utf8, (int)size);
        if (CPython.PyErr_ExceptionMatches(CPython.PyExc_UnicodeEncodeError) == 0) throw PythonException.Fetch();
        CPython.PyErr_Clear();
        NativePyObject* utf16;
        fixed (byte* enc = "utf-16-le"u8)
        fixed (byte* errors = "surrogatepass"u8)
            utf16 = Check(CPython.PyUnicode_AsEncodedString(s, enc, errors));
        try
        {
            byte* data;
            nint length;
            PythonException.ThrowIfMinusOne(CPython.PyBytes_AsStringAndSize(utf16, &data, &length));
            return new string((char*)data, 0, (int)(length / 2));
        }
        finally { CPython.Py_DecRef(utf16); }
    }

    /// <summary>str(o) as a .NET string. Requires the GIL.</summary>
    internal static string StrRaw(NativePyObject* o)
    {
        if (IsStr(o)) return UnicodeToString(o)!;
        var s = Check(CPython.PyObject_Str(o));
        try { return UnicodeToString(s)!; }
        finally { CPython.Py_DecRef(s); }
    }

    private static byte[] BytesToArray(NativePyObject* o)
    {
        byte* data;
        nint length;
        PythonException.ThrowIfMinusOne(CPython.PyBytes_AsStringAndSize(o, &data, &length));
        return new ReadOnlySpan<byte>(data, (int)length).ToArray();
    }

    /// <summary>The type's <c>__qualname__</c>, or "object" when it cannot be read (a metaclass
    /// may make reading it raise, or return a non-str). Never throws, never leaves an error set.</summary>
    internal static string TypeName(NativePyObject* o)
    {
        var name = PyObject.GetAttrRaw((NativePyObject*)CPython.Py_TYPE(o), "__qualname__");
        if (name == null) { CPython.PyErr_Clear(); return "object"; }
        try { return IsStr(name) ? TryUnicodeToString(name) ?? "object" : "object"; }
        finally { CPython.Py_DecRef(name); }
    }

    /// <summary>A str object's text, or null (error cleared) when it cannot be had. For paths that
    /// must not throw nor translate another exception, such as reading an exception's fields.
    /// Requires the GIL.</summary>
    internal static string? TryUnicodeToString(NativePyObject* s)
    {
        nint size;
        byte* utf8 = CPython.PyUnicode_AsUTF8AndSize(s, &size);
        if (utf8 != null) return Encoding.UTF8.GetString(utf8, (int)size);
        CPython.PyErr_Clear();
        NativePyObject* utf16;
        fixed (byte* enc = "utf-16-le"u8)
        fixed (byte* errors = "surrogatepass"u8)
            utf16 = CPython.PyUnicode_AsEncodedString(s, enc, errors);
        if (utf16 == null) { CPython.PyErr_Clear(); return null; }
        try
        {
            byte* data;
            nint length;
            if (CPython.PyBytes_AsStringAndSize(utf16, &data, &length) != 0) { CPython.PyErr_Clear(); return null; }
            return new string((char*)data, 0, (int)(length / 2));
        }
        finally { CPython.Py_DecRef(utf16); }
    }
}
