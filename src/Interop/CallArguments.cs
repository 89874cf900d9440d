using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// The converted arguments of one vectorcall, in a buffer on the caller's stack (native memory
/// when they do not fit): positional values, then keyword values, with their names in a kwnames
/// tuple. The struct owns every reference it holds until <see cref="Invoke"/>, which always
/// releases them, or <see cref="Release"/> for a call abandoned half-way (a conversion that threw):
/// no finally block is needed on the hot path, which keeps the JIT's cloned finally of
/// <see cref="PyObject.Use"/> small. Requires the GIL throughout.
/// </summary>
/// <remarks>
/// Layout: slot 0 is scratch, slot 1 holds self for a method call, the arguments start at slot 2.
/// Both callables therefore get a writable <c>args[-1]</c>, which PY_VECTORCALL_ARGUMENTS_OFFSET
/// lets the callee use (a bound method puts its self there instead of copying the vector).
/// </remarks>
internal unsafe ref struct CallArguments
{
    /// <summary>Stack slots a call site gives: room for five positional and one keyword argument.</summary>
    internal const int StackSlots = 8;
    private const int Leading = 2;

    private readonly NativePyObject** _slots;
    private readonly bool _onHeap;
    private int _count;
    private int _positional;
    private NativePyObject* _kwnames;
    private NativePyObject* _method;

    /// <param name="stack">Stack memory (a stackalloc of <see cref="StackSlots"/>); it must outlive the call.</param>
    /// <param name="count">How many arguments, positional and keyword, will be added.</param>
    internal CallArguments(Span<nint> stack, int count)
    {
        _onHeap = count + Leading > stack.Length;
        _slots = _onHeap
            ? (NativePyObject**)NativeMemory.Alloc((nuint)(count + Leading), (nuint)sizeof(nint))
            : (NativePyObject**)Unsafe.AsPointer(ref MemoryMarshal.GetReference(stack));
    }

    /// <summary>Adds one positional argument, converted (see <see cref="PyConvert"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Add<T>(T value)
    {
        _slots[Leading + _count] = PyConvert.ToPythonRaw(value);
        _count++;
    }

    /// <summary>Makes the call <c>self.name(...)</c> (the method is looked up on the callable given to
    /// <see cref="Invoke"/>, without a bound method object).</summary>
    internal void SetMethod(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        // Refused as everywhere a name is given (C's getattr functions would cut it short).
        Utf8Z.ThrowIfNul(name, nameof(name));
        _method = PyConvert.FromString(name);
    }

    /// <summary>Adds positional arguments, each converted.</summary>
    internal void AddAll(ReadOnlySpan<object?> values)
    {
        foreach (var value in values) Add(value);
    }

    /// <summary>Adds the keyword arguments after the positional ones. A name given twice is refused
    /// before anything reaches Python (vectorcall requires unique names).</summary>
    /// <exception cref="ArgumentException">A null or repeated name.</exception>
    internal void AddKeywords(ReadOnlySpan<(string Name, object? Value)> kwargs)
    {
        if (kwargs.IsEmpty) return;
        ThrowIfInvalid(kwargs);
        _positional = _count;
        _kwnames = CPython.PyTuple_New(kwargs.Length);
        if (_kwnames == null) throw PythonException.Fetch();
        for (int i = 0; i < kwargs.Length; i++)
        {
            CPython.PyTuple_SetItem(_kwnames, i, PyConvert.FromString(kwargs[i].Name)); // steals
            Add(kwargs[i].Value);
        }
    }

    private static void ThrowIfInvalid(ReadOnlySpan<(string Name, object? Value)> kwargs)
    {
        foreach (var (name, _) in kwargs)
        {
            if (name is null) throw new ArgumentNullException(nameof(kwargs), "A keyword argument's name is null.");
            Utf8Z.ThrowIfNul(name, nameof(kwargs)); // as for every name this library passes on
        }
        // Pairwise for the few keywords a call site writes out; a long list (built in code) uses a set.
        var seen = kwargs.Length > 16 ? new HashSet<string>(StringComparer.Ordinal) : null;
        for (int i = 0; i < kwargs.Length; i++)
        {
            bool repeated = seen != null ? !seen.Add(kwargs[i].Name) : Contains(kwargs[..i], kwargs[i].Name);
            if (repeated) throw new ArgumentException($"The keyword argument '{kwargs[i].Name}' is given more than once.", nameof(kwargs));
        }
    }

    private static bool Contains(ReadOnlySpan<(string Name, object? Value)> kwargs, string name)
    {
        foreach (var kw in kwargs)
            if (kw.Name == name) return true;
        return false;
    }

    /// <summary>
    /// <c>callable(*args, **kwargs)</c>, or <c>callable.method(*args, **kwargs)</c> after
    /// <see cref="SetMethod"/>; releases the arguments either way. New reference or NULL with the
    /// Python error set.
    /// </summary>
    internal NativePyObject* Invoke(NativePyObject* callable)
    {
        NativePyObject* result;
        nint positional = _kwnames == null ? _count : _positional;
        nuint nargsf = (nuint)positional | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET);
        if (_method != null)
        {
            _slots[Leading - 1] = callable;
            result = CPython.PyObject_VectorcallMethod(_method, _slots + Leading - 1, nargsf + 1, _kwnames);
        }
        else if (_kwnames == null) result = PyObject.VectorcallRaw(callable, _slots + Leading, _count);
        else if (PythonLibrary.Minor >= 11) result = CPython.PyObject_Vectorcall(callable, _slots + Leading, nargsf, _kwnames);
        else result = VectorcallWithDict(callable, nargsf);
        Release();
        return result;
    }

    // PyObject_Vectorcall is only a static inline function before 3.11: the exported
    // PyObject_VectorcallDict takes the keywords as a dict instead.
    private NativePyObject* VectorcallWithDict(NativePyObject* callable, nuint nargsf)
    {
        var dict = CPython.PyDict_New();
        if (dict == null) return null;
        for (int i = _positional; i < _count; i++)
        {
            if (CPython.PyDict_SetItem(dict, CPython.PyTuple_GetItem(_kwnames, i - _positional), _slots[Leading + i]) != 0)
            {
                CPython.Py_DecRef(dict);
                return null;
            }
        }
        var result = CPython.PyObject_VectorcallDict(callable, _slots + Leading, nargsf, dict);
        CPython.Py_DecRef(dict);
        return result;
    }

    /// <summary>Releases what was added (Py_DecRef, which may run Python code). Safe to call twice.</summary>
    internal void Release()
    {
        for (int i = 0; i < _count; i++) CPython.Py_DecRef(_slots[Leading + i]);
        _count = 0;
        if (_kwnames != null) CPython.Py_DecRef(_kwnames);
        if (_method != null) CPython.Py_DecRef(_method);
        if (_onHeap && _slots != null) NativeMemory.Free(_slots);
        this = default;
    }
}
