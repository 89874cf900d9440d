using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

// The operations the layers above need on borrowed references, typed so that ownership is visible
// at every call site: what comes back new is a NewReference the caller must release. All of them
// require the GIL (their callers hold it: a PyBorrowed cannot leave the method that has one).
public readonly unsafe ref partial struct PyBorrowed
{
    internal static PyBorrowed Of(PyObject owner) => new(owner.Handle);

    internal static PyBorrowed None => new(CPython.Py_None);
    internal static PyBorrowed True => new(CPython.Py_True);
    internal static PyBorrowed False => new(CPython.Py_False);

    internal bool Is(PyBorrowed other) => Pointer == other.Pointer;
    internal bool Is(PyObject other) => Pointer == other.Handle;

    internal bool IsNoneObject => Pointer == CPython.Py_None;

    /// <summary>type(self) is <paramref name="type"/> (no subclasses).</summary>
    internal bool HasExactType(PyObject type) => (NativePyObject*)CPython.Py_TYPE(Pointer) == type.Handle;

    internal bool IsInt => PyConvert.IsInt(Pointer);

    /// <summary>An exception instance (a BaseException subclass's instance).</summary>
    internal bool IsExceptionInstance =>
        (CPython.PyType_GetFlags(CPython.Py_TYPE(Pointer)) & CPython.Py_TPFLAGS_BASE_EXC_SUBCLASS) != 0;

    /// <summary>isinstance(self, type); throws what __instancecheck__ raises.</summary>
    internal bool IsInstanceOf(PyObject type)
    {
        int r = CPython.PyObject_IsInstance(Pointer, type.Handle);
        if (r < 0) throw PythonException.Fetch();
        return r == 1;
    }

    /// <summary>self.name(), throwing the Python error.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NewReference CallMethod(PyObject name) => NewReference.OrThrow(CallMethodRaw(name.Handle, null, null, 0));

    /// <summary>self.name(a), throwing the Python error.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NewReference CallMethod(PyObject name, PyBorrowed a) => NewReference.OrThrow(CallMethodRaw(name.Handle, a.Pointer, null, 1));

    /// <summary>self.name(a, b), throwing the Python error.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NewReference CallMethod(PyObject name, PyBorrowed a, PyBorrowed b) => NewReference.OrThrow(CallMethodRaw(name.Handle, a.Pointer, b.Pointer, 2));

    /// <summary>self.name() == True, throwing the Python error.</summary>
    internal bool CallMethodIsTrue(PyObject name)
    {
        using var r = CallMethod(name);
        return r.Borrow().Pointer == CPython.Py_True;
    }

    /// <summary>self.name(...) for its effect only, where a failure means there is nothing left to
    /// do (the object is already closed or done): the error is cleared, and false returned.</summary>
    internal bool TryCallMethod(PyObject name, PyBorrowed a = default)
    {
        var r = CallMethodRaw(name.Handle, a.Pointer, null, a.Pointer == null ? 0u : 1u);
        if (r == null)
        {
            CPython.PyErr_Clear();
            return false;
        }
        CPython.Py_DecRef(r);
        return true;
    }

    private NativePyObject* CallMethodRaw(NativePyObject* name, NativePyObject* a, NativePyObject* b, nuint n)
    {
        var args = stackalloc NativePyObject*[3];
        args[0] = Pointer;
        args[1] = a;
        args[2] = b;
        return CPython.PyObject_VectorcallMethod(name, args, (n + 1) | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), null);
    }

    /// <summary>self(), throwing the Python error.</summary>
    internal NewReference Call() => NewReference.OrThrow(CPython.PyObject_CallNoArgs(Pointer));

    /// <summary>self(a), throwing the Python error.</summary>
    internal NewReference CallOne(PyBorrowed a)
    {
        var args = stackalloc NativePyObject*[2];
        args[1] = a.Pointer;
        return NewReference.OrThrow(PyObject.VectorcallRaw(Pointer, args + 1, 1));
    }

    /// <summary>self(a, b, c), throwing the Python error.</summary>
    internal NewReference Call(PyBorrowed a, PyBorrowed b, PyBorrowed c)
    {
        var args = stackalloc NativePyObject*[4];
        args[1] = a.Pointer;
        args[2] = b.Pointer;
        args[3] = c.Pointer;
        return NewReference.OrThrow(PyObject.VectorcallRaw(Pointer, args + 1, 3));
    }

    /// <summary>self(a, **{names[0]: k1, names[1]: k2}) with <paramref name="names"/> a tuple of two
    /// str, throwing the Python error. 3.11+ (PyObject_Vectorcall is exported from 3.11 on).</summary>
    internal NewReference CallWithKeywords(PyBorrowed a, PyBorrowed names, PyBorrowed k1, PyBorrowed k2)
    {
        var args = stackalloc NativePyObject*[4];
        args[1] = a.Pointer;
        args[2] = k1.Pointer;
        args[3] = k2.Pointer;
        return NewReference.OrThrow(CPython.PyObject_Vectorcall(Pointer, args + 1, 1 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), names.Pointer));
    }

    /// <summary>Converts to <typeparamref name="T"/> (see <see cref="PyConvert"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal T As<T>() => PyConvert.ToClrRaw<T>(Pointer);

    /// <summary>The .NET value (see <see cref="PyConvert.ToClr"/>).</summary>
    internal object? ToClr() => PyConvert.ToClrRaw(Pointer);

    /// <summary>The int value, or false when it does not fit a long.</summary>
    internal bool TryAsInt64(out long value)
    {
        int overflow;
        value = CPython.PyLong_AsLongLongAndOverflow(Pointer, &overflow);
        if (value == -1) PythonException.ThrowIfOccurred();
        return overflow == 0;
    }
}

/// <summary>contextvars contexts (the C API of context.h), typed.</summary>
internal static unsafe class PyContextApi
{
    /// <summary>A copy of the current context. Requires the GIL.</summary>
    internal static NewReference CopyCurrent() => NewReference.OrThrow(CPython.PyContext_CopyCurrent());

    /// <summary>Enters <paramref name="context"/>; false (error cleared) when it is already entered
    /// further down this thread's stack, i.e. current anyway. Requires the GIL.</summary>
    internal static bool TryEnter(PyBorrowed context)
    {
        if (CPython.PyContext_Enter(context.Pointer) == 0) return true;
        CPython.PyErr_Clear();
        return false;
    }

    /// <summary>Exits <paramref name="context"/>; a failure (not current) is cleared. Requires the GIL.</summary>
    internal static void Exit(PyBorrowed context)
    {
        if (CPython.PyContext_Exit(context.Pointer) != 0) CPython.PyErr_Clear();
    }
}

/// <summary>Weak references (weakrefobject.h), typed, across versions.</summary>
internal static unsafe class PyWeakRefApi
{
    /// <summary>weakref.ref(target, callback). Requires the GIL.</summary>
    internal static NewReference New(PyBorrowed target, PyBorrowed callback) =>
        NewReference.OrThrow(CPython.PyWeakref_NewRef(target.Pointer, callback.Pointer));

    /// <summary>The referent, or the null reference when it was collected. Requires the GIL.</summary>
    internal static NewReference Referent(PyBorrowed weakref)
    {
        if (PythonLibrary.Minor >= 13)
        {
            NativePyObject* obj;
            PythonException.ThrowIfMinusOne(CPython.PyWeakref_GetRef(weakref.Pointer, &obj));
            return new NewReference(obj);
        }
        var borrowed = CPython.PyWeakref_GetObject(weakref.Pointer);
        if (borrowed == null) throw PythonException.Fetch();
        if (borrowed == CPython.Py_None) return default;
        return NewReference.To(new PyBorrowed(borrowed));
    }
}

/// <summary>The pending-error state, for the few places that decide an error does not matter.</summary>
internal static unsafe class PyErrorState
{
    /// <summary>Prints <paramref name="error"/> as "Exception ignored in: context" (sys.unraisablehook),
    /// for an error that has nowhere else to go. Requires the GIL.</summary>
    internal static void WriteUnraisable(Exception error, PyBorrowed context)
    {
        ExceptionBridge.Raise(error);
        CPython.PyErr_WriteUnraisable(context.Pointer);
    }

    /// <summary>The .NET exception for a Python exception object (the original .NET exception if it
    /// came from .NET). Requires the GIL.</summary>
    internal static Exception ToException(PyBorrowed exception) => PythonException.FromPython(NewReference.To(exception).Steal(), 0);

    /// <summary>A Python TypeError (not a .NET exception's DotNetTypeError), as the .NET exception to
    /// throw: raised into Python it is that TypeError itself. Requires the GIL.</summary>
    internal static PythonException TypeError(string message)
    {
        var text = PyConvert.FromString(message);
        CPython.PyErr_SetObject(CPython.PyExc_TypeError, text);
        CPython.Py_DecRef(text);
        return (PythonException)PythonException.Fetch();
    }

    /// <summary>A fresh KeyboardInterrupt, as the .NET exception to throw. Requires the GIL.</summary>
    internal static PythonException KeyboardInterrupt()
    {
        CPython.PyErr_SetObject(CPython.PyExc_KeyboardInterrupt, null);
        return (PythonException)PythonException.Fetch();
    }
}

/// <summary>New Python objects made from .NET values, as new references.</summary>
internal static unsafe class PyValues
{
    /// <summary>A Python int. Requires the GIL.</summary>
    internal static NewReference Int64(long value) => NewReference.OrThrow(CPython.PyLong_FromLongLong(value));

    /// <summary><paramref name="value"/> converted (see <see cref="PyConvert"/>). Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static NewReference From<T>(T value) => new(PyConvert.ToPythonRaw(value));

    /// <summary>
    /// A .NET function's result for Python: <paramref name="value"/> converted, and when it is a
    /// <see cref="PyObject"/>, that owner released at once. Returning an IDisposable hands it to the
    /// caller (the .NET convention), and the caller here is Python: kept, the owner's reference
    /// would hold the object until the .NET GC finalized it, so Python's refcount could not reach
    /// zero when Python dropped it (its <c>__del__</c>, e.g. an async iterator's cancellation after
    /// an early <c>break</c>, waited for a .NET collection). Requires the GIL.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static NewReference FromResult<T>(T value)
    {
        var result = From(value);
        if (value is PyObject owned) owned.Dispose(); // folds away for value types
        return result;
    }

    /// <summary>The Python exception for a .NET one (the original object for a PythonException). Requires the GIL.</summary>
    internal static NewReference FromException(Exception exception) => NewReference.OrThrow(ExceptionBridge.ToPythonRaw(exception, 0));

    /// <summary>An interned str (new reference). Requires the GIL.</summary>
    internal static PyObject Intern(string name)
    {
        fixed (byte* p = Utf8Z.Encode(name, nameof(name)))
            return PyObject.StealOrThrow(CPython.PyUnicode_InternFromString(p));
    }
}

public readonly unsafe ref partial struct PyBorrowed
{
    /// <summary>A borrowed view of an object known only by its address. The caller vouches that the
    /// object is alive for as long as the view is used (e.g. it checked, under the GIL, that the owner
    /// that keeps it alive has not let go).</summary>
    internal static PyBorrowed DangerousFromHandle(nint handle) => new((NativePyObject*)handle);
}
