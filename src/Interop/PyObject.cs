using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// An owned (strong) reference to a Python object. <see cref="Dispose"/> releases it at once when
/// this thread holds the GIL and queues the release otherwise; a forgotten one is queued by the
/// finalizer, which never blocks on the GIL. After finalization of the interpreter releasing is
/// a no-op. Methods take the GIL themselves (reentrantly), so they work on any thread.
/// </summary>
public sealed unsafe partial class PyObject : IDisposable
{
    private nint _handle;
    // Shared singletons (None, True, False) handed out as one instance: Dispose must not release them.
    private readonly bool _shared;

    private PyObject(nint handle, bool shared)
    {
        _handle = handle;
        _shared = shared;
        if (shared) GC.SuppressFinalize(this);
    }

    /// <summary>Takes ownership of a new reference (the caller's reference is stolen).</summary>
    internal static PyObject Steal(Interop.PyObject* newReference)
    {
        if (newReference == null) throw new ArgumentNullException(nameof(newReference));
        return new PyObject((nint)newReference, shared: false);
    }

    /// <summary>Takes ownership of a new reference, or throws the pending Python exception if NULL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static PyObject StealOrThrow(Interop.PyObject* newReference) =>
        newReference != null ? new PyObject((nint)newReference, shared: false) : throw PythonException.Fetch();

    /// <summary>Adds a reference to a borrowed pointer and owns it. Requires the GIL.</summary>
    internal static PyObject FromBorrowed(Interop.PyObject* borrowed)
    {
        if (borrowed == null) throw new ArgumentNullException(nameof(borrowed));
        CPython.Py_IncRef(borrowed);
        return new PyObject((nint)borrowed, shared: false);
    }

    internal static PyObject Shared(Interop.PyObject* immortal) => new((nint)immortal, shared: true);

    /// <summary>Takes ownership of a new reference given as a raw pointer (for embedders mixing in their own C API calls).</summary>
    public static PyObject StealHandle(nint newReference) => Steal((Interop.PyObject*)newReference);

    /// <summary>Increments the reference count of a borrowed raw pointer and owns the new reference.</summary>
    public static PyObject FromBorrowedHandle(nint borrowed)
    {
        using var gil = Gil.Acquire();
        return FromBorrowed((Interop.PyObject*)borrowed);
    }

    /// <summary>The raw pointer; valid while this object is alive and not disposed. Does not transfer ownership.</summary>
    public nint DangerousGetHandle() => (nint)Handle;

    internal Interop.PyObject* Handle
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            nint h = _handle;
            if (h == 0) ThrowDisposed();
            return (Interop.PyObject*)h;
        }
    }

    public bool IsDisposed => _handle == 0;

    /// <summary>Gives up ownership: returns the new reference the caller must now release. Requires nothing.</summary>
    internal Interop.PyObject* Detach()
    {
        if (_shared)
        {
            CPython.Py_IncRef((Interop.PyObject*)_handle);
            return (Interop.PyObject*)_handle;
        }
        nint h = Interlocked.Exchange(ref _handle, 0);
        if (h == 0) ThrowDisposed();
        GC.SuppressFinalize(this);
        return (Interop.PyObject*)h;
    }

    /// <summary>A new reference to the same object (Py_NewRef), owned by the result.</summary>
    public PyObject NewReference()
    {
        using var gil = Gil.Acquire();
        return FromBorrowed(Handle);
    }

    public void Dispose()
    {
        if (_shared) return;
        nint h = Interlocked.Exchange(ref _handle, 0);
        if (h == 0) return;
        GC.SuppressFinalize(this);
        Release(h);
    }

    ~PyObject()
    {
        nint h = _handle;
        if (h != 0 && PythonRuntime.State == PythonRuntime.RuntimeState.Running)
            DeferredRelease.Enqueue(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Release(nint h)
    {
        if (Gil.HeldByUs)
            CPython.Py_DecRef((Interop.PyObject*)h);
        else if (PythonRuntime.State == PythonRuntime.RuntimeState.Running)
            DeferredRelease.Enqueue(h);
        // After finalization the object no longer exists; there is nothing to release.
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(PyObject), "This Python object reference was disposed.");

    /// <summary>A borrowed view of this object for the duration of a call.</summary>
    public PyBorrowed Borrow() => new(Handle);
}

/// <summary>
/// A borrowed reference: valid only while its owner keeps the object alive. It cannot be disposed
/// and, as a ref struct, cannot be stored on the heap; <see cref="ToOwned"/> makes an owned one.
/// </summary>
public readonly unsafe ref partial struct PyBorrowed
{
    internal readonly Interop.PyObject* Pointer;

    internal PyBorrowed(Interop.PyObject* pointer) => Pointer = pointer;

    public bool IsNull => Pointer == null;

    public nint DangerousGetHandle() => (nint)Pointer;

    public PyObject ToOwned()
    {
        if (Pointer == null) throw new InvalidOperationException("NULL borrowed reference.");
        using var gil = Gil.Acquire();
        return PyObject.FromBorrowed(Pointer);
    }
}
