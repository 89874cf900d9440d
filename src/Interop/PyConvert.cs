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
/// </summary>
public static unsafe class PyConvert
{
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
    internal static Interop.PyObject* ToPythonRaw<T>(T value)
    {
        // typeof(T) tests on value types fold away at JIT time: one branch survives.
        if (typeof(T) == typeof(long)) return Check(CPython.PyLong_FromLongLong((long)(object)value!));
        if (typeof(T) == typeof(int)) return Check(CPython.PyLong_FromLongLong((int)(object)value!));
        if (typeof(T) == typeof(double)) return Check(CPython.PyFloat_FromDouble((double)(object)value!));
        if (typeof(T) == typeof(bool)) return CPython.PyBool_FromLong((bool)(object)value! ? 1 : 0);
        return ToPythonRaw((object?)value);
    }

    /// <summary>New reference. Requires the GIL.</summary>
    internal static Interop.PyObject* ToPythonRaw(object? value)
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
            case ITuple tuple: return FromTuple(tuple);
            case IDictionary dict: return FromDictionary(dict);
            case IEnumerable items: return FromEnumerable(items);
            default:
                throw new ArgumentException($"A .NET {value.GetType()} has no Python conversion; pass a PyObject or a supported type.", nameof(value));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Interop.PyObject* Check(Interop.PyObject* result) =>
        result != null ? result : throw PythonException.Fetch();

    internal static Interop.PyObject* FromString(string s)
    {
        int max = Encoding.UTF8.GetMaxByteCount(s.Length);
        byte[]? rented = null;
        Span<byte> buffer = max <= 512 ? stackalloc byte[512] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            var status = Utf8.FromUtf16(s, buffer, out _, out int written, replaceInvalidSequences: false);
            if (status == OperationStatus.Done)
                fixed (byte* p = buffer)
                    return Check(CPython.PyUnicode_FromStringAndSize(p, written));
        }
        finally
        {
            if (rented != null) ArrayPool<byte>.Shared.Return(rented);
        }
        // Lone surrogates have no UTF-8 form; Python's str can hold them ("surrogatepass").
        int littleEndian = -1;
        fixed (char* p = s)
        fixed (byte* errors = "surrogatepass"u8)
            return Check(CPython.PyUnicode_DecodeUTF16((byte*)p, s.Length * 2, errors, &littleEndian));
    }

    private static Interop.PyObject* FromBytes(ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes) return Check(CPython.PyBytes_FromStringAndSize(p, bytes.Length));
    }

    private static Interop.PyObject* FromBigInteger(BigInteger value)
    {
        if (value >= long.MinValue && value <= long.MaxValue)
            return Check(CPython.PyLong_FromLongLong((long)value));
        // Hex is not subject to the int_max_str_digits limit (3.11+).
        string hex = (value.Sign < 0 ? "-0x" : "0x") + BigInteger.Abs(value).ToString("x", CultureInfo.InvariantCulture);
        fixed (byte* p = PythonLibrary.Utf8Z(hex)) return Check(CPython.PyLong_FromString(p, null, 16));
    }

    private static Interop.PyObject* FromTuple(ITuple tuple)
    {
        var t = Check(CPython.PyTuple_New(tuple.Length));
        try
        {
            for (int i = 0; i < tuple.Length; i++)
                CPython.PyTuple_SetItem(t, i, ToPythonRaw(tuple[i])); // steals
            return t;
        }
        catch
        {
            CPython.Py_DecRef(t);
            throw;
        }
    }

    private static Interop.PyObject* FromDictionary(IDictionary dict)
    {
        var d = Check(CPython.PyDict_New());
        try
        {
            foreach (DictionaryEntry entry in dict)
            {
                var k = ToPythonRaw(entry.Key);
                var v = ToPythonRaw(entry.Value);
                int rc = CPython.PyDict_SetItem(d, k, v);
                CPython.Py_DecRef(k);
                CPython.Py_DecRef(v);
                PythonException.ThrowIfMinusOne(rc);
            }
            return d;
        }
        catch
        {
            CPython.Py_DecRef(d);
            throw;
        }
    }

    private static Interop.PyObject* FromEnumerable(IEnumerable items)
    {
        var list = Check(CPython.PyList_New(0));
        try
        {
            foreach (var item in items)
            {
                var o = ToPythonRaw(item);
                int rc = CPython.PyList_Append(list, o);
                CPython.Py_DecRef(o);
                PythonException.ThrowIfMinusOne(rc);
            }
            return list;
        }
        catch
        {
            CPython.Py_DecRef(list);
            throw;
        }
    }

    private static nuint Flags(Interop.PyObject* o) => CPython.PyType_GetFlags(CPython.Py_TYPE(o));

    internal static bool IsInt(Interop.PyObject* o) => (Flags(o) & CPython.Py_TPFLAGS_LONG_SUBCLASS) != 0;
    internal static bool IsStr(Interop.PyObject* o) => (Flags(o) & CPython.Py_TPFLAGS_UNICODE_SUBCLASS) != 0;
    private static bool IsFloat(Interop.PyObject* o) =>
        CPython.Py_TYPE(o) == CPython.PyFloat_Type || CPython.PyType_IsSubtype(CPython.Py_TYPE(o), CPython.PyFloat_Type) != 0;

    /// <summary>Converts a borrowed object. Requires the GIL.</summary>
    internal static object? ToClrRaw(Interop.PyObject* o)
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
            nint n = CPython.PyTuple_Size(o);
            var result = new object?[n];
            for (nint i = 0; i < n; i++) result[i] = ToClrRaw(CPython.PyTuple_GetItem(o, i));
            return result;
        }
        if ((flags & CPython.Py_TPFLAGS_LIST_SUBCLASS) != 0)
        {
            nint n = CPython.PyList_Size(o);
            var result = new List<object?>((int)n);
            for (nint i = 0; i < n; i++) result.Add(ToClrRaw(CPython.PyList_GetItem(o, i)));
            return result;
        }
        if ((flags & CPython.Py_TPFLAGS_DICT_SUBCLASS) != 0)
        {
            var result = new Dictionary<object, object?>();
            nint pos = 0;
            Interop.PyObject* k, v;
            while (CPython.PyDict_Next(o, &pos, &k, &v) != 0)
                result[ToClrRaw(k) ?? throw new NotSupportedException("A dict with a None key has no .NET Dictionary form.")] = ToClrRaw(v);
            return result;
        }
        if (IsFloat(o)) return AsDouble(o);
        return PyObject.FromBorrowed(o);
    }

    /// <summary>Converts a borrowed object to <typeparamref name="T"/>. Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T ToClrRaw<T>(Interop.PyObject* o)
    {
        if (typeof(T) == typeof(long)) return (T)(object)AsLong(o);
        if (typeof(T) == typeof(int)) return (T)(object)checked((int)AsLong(o));
        if (typeof(T) == typeof(double)) return (T)(object)AsDouble(o);
        if (typeof(T) == typeof(bool)) return (T)(object)AsBool(o);
        return ToClrRawSlow<T>(o);
    }

    private static T ToClrRawSlow<T>(Interop.PyObject* o)
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

    internal static long AsLong(Interop.PyObject* o)
    {
        if (!IsInt(o)) throw new InvalidCastException($"Cannot convert a Python {TypeName(o)} to an integer.");
        long v = CPython.PyLong_AsLongLong(o);
        if (v == -1) PythonException.ThrowIfOccurred();
        return v;
    }

    internal static double AsDouble(Interop.PyObject* o)
    {
        double v = CPython.PyFloat_AsDouble(o);
        if (v == -1.0) PythonException.ThrowIfOccurred();
        return v;
    }

    internal static bool AsBool(Interop.PyObject* o)
    {
        if (o == CPython.Py_True) return true;
        if (o == CPython.Py_False) return false;
        throw new InvalidCastException($"Cannot convert a Python {TypeName(o)} to bool; use IsTrue() for truthiness.");
    }

    internal static BigInteger ToBigInteger(Interop.PyObject* o)
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
    internal static string? UnicodeToString(Interop.PyObject* s)
    {
        nint size;
        byte* utf8 = CPython.PyUnicode_AsUTF8AndSize(s, &size);
        if (utf8 != null) return Encoding.UTF8.GetString(utf8, (int)size);
        if (CPython.PyErr_ExceptionMatches(CPython.PyExc_UnicodeEncodeError) == 0) throw PythonException.Fetch();
        CPython.PyErr_Clear();
        Interop.PyObject* utf16;
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
    internal static string StrRaw(Interop.PyObject* o)
    {
        if (IsStr(o)) return UnicodeToString(o)!;
        var s = Check(CPython.PyObject_Str(o));
        try { return UnicodeToString(s)!; }
        finally { CPython.Py_DecRef(s); }
    }

    private static byte[] BytesToArray(Interop.PyObject* o)
    {
        byte* data;
        nint length;
        PythonException.ThrowIfMinusOne(CPython.PyBytes_AsStringAndSize(o, &data, &length));
        return new ReadOnlySpan<byte>(data, (int)length).ToArray();
    }

    internal static string TypeName(Interop.PyObject* o)
    {
        var name = PyObject.GetAttrRaw((Interop.PyObject*)CPython.Py_TYPE(o), "__qualname__");
        if (name == null) { CPython.PyErr_Clear(); return "object"; }
        try { return UnicodeToString(name) ?? "object"; }
        finally { CPython.Py_DecRef(name); }
    }
}
