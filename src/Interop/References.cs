using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// A new (owned) reference on the stack: whoever holds it releases it exactly once, by
/// <see cref="Dispose"/> (use <c>using</c>) or by moving it on (<see cref="MoveToObject"/>,
/// <see cref="Steal"/>, <see cref="PyRef.Set"/>). A ref struct, so it cannot outlive the method, be
/// stored on the heap or cross an await, and every method that has one holds the GIL. Zero cost:
/// one pointer. The null reference is allowed and means "nothing" (an error already fetched, or an
/// optional value left out).
/// </summary>
internal unsafe ref struct NewReference
{
    private NativePyObject* _pointer;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NewReference(NativePyObject* newReference) => _pointer = newReference;

    /// <summary>Owns <paramref name="newReference"/>, or throws the pending Python error for NULL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static NewReference OrThrow(NativePyObject* newReference) =>
        newReference != null ? new(newReference) : throw PythonException.Fetch();

    /// <summary>A new reference to a borrowed object (Py_NewRef).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static NewReference To(PyBorrowed borrowed)
    {
        CPython.Py_IncRef(borrowed.Pointer);
        return new(borrowed.Pointer);
    }

    /// <summary>Moves the reference out of a heap owner, which is left disposed.</summary>
    internal static NewReference MoveFrom(PyObject owned) => new(owned.Detach());

    /// <summary>A new reference to None.</summary>
    internal static NewReference None() => To(new PyBorrowed(CPython.Py_None));

    public readonly bool IsNull => _pointer == null;

    /// <summary>A borrowed view, valid while this reference is held.</summary>
    public readonly PyBorrowed Borrow() => new(_pointer);

    /// <summary>Moves the reference into a heap owner (a <see cref="PyObject"/>).</summary>
    public PyObject MoveToObject()
    {
        var p = _pointer;
        _pointer = null;
        return PyObject.Steal(p);
    }

    /// <summary>Gives the reference away: for a C API that steals it, or a return to C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NativePyObject* Steal()
    {
        var p = _pointer;
        _pointer = null;
        return p;
    }

    /// <summary>Releases the reference (Py_DecRef, which may run Python code). Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dispose()
    {
        var p = _pointer;
        if (p == null) return;
        _pointer = null;
        CPython.Py_DecRef(p);
    }
}

/// <summary>
/// An owned reference kept in a field of an object that lives on the heap (pyo3's <c>Py&lt;T&gt;</c>
/// without the finalizer): the field is the visible owner, filled from a <see cref="NewReference"/>
/// and emptied exactly once, by <see cref="Release"/> with the GIL or <see cref="ReleaseDeferred"/>
/// without it. Never copy one: keep it in a field and call its methods on the field.
/// </summary>
internal unsafe struct PyRef
{
    private nint _pointer;

    public readonly bool IsNull => _pointer == 0;

    /// <summary>Borrowed view of the held object. Requires the GIL and a non-empty field.</summary>
    public readonly PyBorrowed Borrow() => new((NativePyObject*)_pointer);

    /// <summary>Takes ownership of <paramref name="reference"/>; the field must be empty.</summary>
    public void Set(ref NewReference reference)
    {
        if (_pointer != 0) throw new InvalidOperationException("PyRef already holds a reference.");
        _pointer = (nint)reference.Steal();
    }

    /// <summary>Empties the field and hands its reference to the caller.</summary>
    public NewReference Take() => new((NativePyObject*)Interlocked.Exchange(ref _pointer, 0));

    /// <summary>Releases the held reference, if any. Requires the GIL.</summary>
    public void Release()
    {
        var p = Interlocked.Exchange(ref _pointer, 0);
        if (p != 0) CPython.Py_DecRef((NativePyObject*)p);
    }

    /// <summary>Releases the held reference from any thread: at once with the GIL, queued without it.</summary>
    public void ReleaseDeferred()
    {
        var p = Interlocked.Exchange(ref _pointer, 0);
        if (p != 0) PyObject.Release(p);
    }
}
