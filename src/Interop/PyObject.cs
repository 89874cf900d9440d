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
    // Calls in progress on this object (see Use). Read and written only under the GIL, which every
    // use of the handle holds, so a plain field is enough: like SafeHandle's count, without atomics.
    private int _users;
    // The reference Dispose gave up while a call was using the object: the last user releases it.
    // Under the GIL too.
    private nint _releaseWhenUnused;

    private PyObject(nint handle, bool shared)
    {
        _handle = handle;
        _shared = shared;
        if (shared) GC.SuppressFinalize(this);
    }

    /// <summary>Takes ownership of a new reference (the caller's reference is stolen).</summary>
    internal static PyObject Steal(NativePyObject* newReference)
    {
        if (newReference == null) throw new ArgumentNullException(nameof(newReference));
        return new PyObject((nint)newReference, shared: false);
    }

    /// <summary>Takes ownership of a new reference, or throws the pending Python exception if NULL.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static PyObject StealOrThrow(NativePyObject* newReference) =>
        newReference != null ? new PyObject((nint)newReference, shared: false) : throw PythonException.Fetch();

    /// <summary>Adds a reference to a borrowed pointer and owns it. Requires the GIL.</summary>
    internal static PyObject FromBorrowed(NativePyObject* borrowed)
    {
        if (borrowed == null) throw new ArgumentNullException(nameof(borrowed));
        CPython.Py_IncRef(borrowed);
        return new PyObject((nint)borrowed, shared: false);
    }

    internal static PyObject Shared(NativePyObject* immortal) => new((nint)immortal, shared: true);

    /// <summary>Takes ownership of a new reference given as a raw pointer (for embedders mixing in their own C API calls).</summary>
    public static PyObject StealHandle(nint newReference) => Steal((NativePyObject*)newReference);

    /// <summary>Increments the reference count of a borrowed raw pointer and owns the new reference.</summary>
    public static PyObject FromBorrowedHandle(nint borrowed)
    {
        using var gil = Gil.Acquire();
        return FromBorrowed((NativePyObject*)borrowed);
    }

    /// <summary>The raw pointer; valid while this object is alive and not disposed. Does not transfer ownership.</summary>
    public nint DangerousGetHandle() => (nint)Handle;

    internal NativePyObject* Handle
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            nint h = _handle;
            if (h == 0) ThrowDisposed();
            return (NativePyObject*)h;
        }
    }

    /// <summary>True once this reference was disposed, detached or moved; any use then throws <see
    /// cref="ObjectDisposedException"/>.</summary>
    public bool IsDisposed => _handle == 0;

    /// <summary>Gives up ownership: returns the new reference the caller must now release. Requires nothing.</summary>
    internal NativePyObject* Detach()
    {
        if (_shared)
        {
            CPython.Py_IncRef((NativePyObject*)_handle);
            return (NativePyObject*)_handle;
        }
        nint h = Interlocked.Exchange(ref _handle, 0);
        if (h == 0) ThrowDisposed();
        GC.SuppressFinalize(this);
        return (NativePyObject*)h;
    }

    /// <summary>A new reference to the same object (Py_NewRef), owned by the result.</summary>
    public PyObject NewReference()
    {
        using var gil = Gil.Acquire();
        return FromBorrowed(Handle);
    }

    /// <summary>
    /// Releases the reference. Safe while another thread is inside a call on this object (the
    /// call's Python code may have released the GIL): the release then happens when that call
    /// leaves, so the object is never freed under it.
    /// </summary>
    public void Dispose()
    {
        if (_shared) return;
        nint h = Interlocked.Exchange(ref _handle, 0);
        if (h == 0) return;
        GC.SuppressFinalize(this);
        if (Gil.HeldByUs)
            ReleaseUnderGil(h);
        else if (PythonRuntime.State == PythonRuntime.RuntimeState.Running)
            DeferredRelease.EnqueueDisposed(this, h);
        // After finalization the object no longer exists; there is nothing to release.
    }

    /// <summary>Releases the reference Dispose gave up, now or when the last call using it leaves. Requires the GIL.</summary>
    internal void ReleaseUnderGil(nint h)
    {
        if (_users > 0) _releaseWhenUnused = h;
        else CPython.Py_DecRef((NativePyObject*)h);
    }

    /// <summary>
    /// Takes the GIL (reentrantly) and marks this object in use until the result is disposed, so
    /// that a <see cref="Dispose"/> from another thread meanwhile cannot free it under a call whose
    /// Python code released the GIL. Every operation that passes <see cref="Handle"/> to code that
    /// may run Python goes through this instead of <see cref="Gil.Acquire"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">Already disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal InUse Use()
    {
        Gil.Acquire();
        if (_handle == 0) ThrowDisposedInUse();
        _users++;
        return new InUse(this);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposedInUse()
    {
        Gil.Exit();
        ThrowDisposed();
    }

    // Branch-free, so that the JIT still clones the caller's finally (a larger one becomes a
    // funclet with its own thread-static lookup, which cost ~20 ns a call).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LeaveUse()
    {
        _users--;
        if (_releaseWhenUnused != 0) ReleaseAfterLastUse();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReleaseAfterLastUse()
    {
        if (_users != 0) return; // another call still uses it: the last one releases
        nint h = _releaseWhenUnused;
        _releaseWhenUnused = 0;
        CPython.Py_DecRef((NativePyObject*)h);
    }

    /// <summary>The GIL held and the object in use; see <see cref="Use"/>.</summary>
    internal readonly ref struct InUse
    {
        private readonly PyObject _owner;

        internal InUse(PyObject owner) => _owner = owner;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dispose()
        {
            _owner.LeaveUse();
            Gil.Exit();
        }
    }

    /// <summary>A reference nobody disposed: queued for release by the next thread that takes the
    /// GIL (the finalizer never waits for it).</summary>
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
            CPython.Py_DecRef((NativePyObject*)h);
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
    internal readonly NativePyObject* Pointer;

    internal PyBorrowed(NativePyObject* pointer) => Pointer = pointer;

    /// <summary>True for a NULL reference (a C API result that failed, or an empty slot).</summary>
    public bool IsNull => Pointer == null;

    /// <summary>The raw <c>PyObject*</c>, valid only while the owner keeps the object alive; for
    /// passing to native code the caller owns.</summary>
    public nint DangerousGetHandle() => (nint)Pointer;

    /// <summary>A new strong reference to the same object, owned by the caller.</summary>
    public PyObject ToOwned()
    {
        if (Pointer == null) throw new InvalidOperationException("NULL borrowed reference.");
        using var gil = Gil.Acquire();
        return PyObject.FromBorrowed(Pointer);
    }
}
