using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

// Two small Python types of our own, made with PyType_FromSpec (no C shim). Their instance layout
// is ours: the object header (whose 16-byte size native-headers checks) followed by our fields.

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct HandleBoxObject
{
    public NativePyObject ob_base;
    public nint gchandle;
    public PyMethodDef* ownedDef; // the def of the one function whose self this is, or NULL
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct ReadyObject
{
    public NativePyObject ob_base;
    public NativePyObject* value;     // result to return (owned), or NULL
    public NativePyObject* exception; // exception to raise (owned), or NULL
}

internal static unsafe class NativeTypes
{
    /// <summary>A .NET object held by a GCHandle inside a Python object: the "self" of our
    /// callbacks. A type check and a field read get the target back (no name compare as with capsules).</summary>
    internal static PyTypeObject* HandleBox;

    /// <summary>An awaitable that is complete before it is awaited: a .NET Task that had already
    /// finished. Awaiting it returns (or raises) at once, with no loop iteration.</summary>
    internal static PyTypeObject* Ready;

    // Guards only the publication of the two types, never a call into Python: creating a type can
    // run a garbage collection, and with it __del__ code that hands the GIL to another thread.
    private static readonly object s_publish = new();

    /// <summary>Requires the GIL.</summary>
    internal static void EnsureReady()
    {
        if (Ready != null) return;
        var handleBox = MakeType("asyncioraw.Handle", sizeof(HandleBoxObject),
            "A .NET object kept alive for Python.",
            [(CPython.Py_tp_dealloc, (nint)(delegate* unmanaged<NativePyObject*, void>)&HandleBoxDealloc)]);
        var slots = new List<(int, nint)>
        {
            (CPython.Py_tp_dealloc, (nint)(delegate* unmanaged<NativePyObject*, void>)&ReadyDealloc),
            (CPython.Py_am_await, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*>)&ReadyAwait),
            (CPython.Py_tp_iter, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*>)&ReadyAwait),
            (CPython.Py_tp_iternext, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*>)&ReadyNext),
        };
        // am_send (3.10+) hands the result back without a StopIteration object where the
        // interpreter uses it (3.10, 3.11); 3.12+ goes through tp_iternext.
        if (PythonLibrary.Minor >= 10)
            slots.Add((CPython.Py_am_send, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject**, int>)&ReadySend));
        var ready = MakeType("asyncioraw.ReadyAwaitable", sizeof(ReadyObject),
            "The result of a .NET Task that had already completed.", slots);
        bool published = false;
        lock (s_publish)
        {
            if (Ready == null)
            {
                HandleBox = handleBox;
                Ready = ready;
                ObjectFinalizationHooks.Register(static () => { Ready = null; HandleBox = null; });
                published = true;
            }
        }
        if (published)
        {
            WarmUp(); // Python code: after the lock, never under it
            return;
        }
        // Another thread published first; nothing was made from these.
        CPython.Py_DecRef((NativePyObject*)handleBox);
        CPython.Py_DecRef((NativePyObject*)ready);
    }

    // Like the trampolines (see Callbacks), every native entry of these types runs once here, in
    // the parent: a forked child that compiled one would write the CLR's code memory, which it
    // shares with the parent. AggressiveOptimization keeps them from being recompiled later.
    private const string WarmUpSource = """
        def warm_up(value, error):
            for ready in (value, error):
                try:
                    next(ready.__await__())          # am_await, tp_iternext
                except BaseException:
                    pass
                async def awaiting(r=ready):
                    return await r                   # am_send where the interpreter uses it
                try:
                    awaiting().send(None)
                except BaseException:
                    pass
        """;

    private static void WarmUp()
    {
        using var globals = Py.Run(WarmUpSource, fileName: "<asyncioraw warm-up>");
        using var warmUp = globals["warm_up"];
        using var value = NewReady(PyValues.Int64(1), default).MoveToObject();
        using var error = NewReady(default, NewReference.OrThrow(CPython.PyObject_CallNoArgs(CPython.PyExc_RuntimeError))).MoveToObject();
        using (warmUp.Call(value, error)) { }
    }

    private static PyTypeObject* MakeType(string name, int basicSize, string doc, List<(int Slot, nint Func)> slots)
    {
        // PyType_FromSpec keeps pointers to the name and doc: they live for the process.
        var slotArray = (PyType_Slot*)NativeMemory.AllocZeroed((nuint)(slots.Count + 2), (nuint)sizeof(PyType_Slot));
        for (int i = 0; i < slots.Count; i++) slotArray[i] = new PyType_Slot { slot = slots[i].Slot, pfunc = (void*)slots[i].Func };
        slotArray[slots.Count] = new PyType_Slot { slot = CPython.Py_tp_doc, pfunc = NativeString(doc) };
        var spec = new PyType_Spec
        {
            name = NativeString(name),
            basicsize = basicSize,
            itemsize = 0,
            flags = CPython.Py_TPFLAGS_HAVE_VERSION_TAG,
            slots = slotArray,
        };
        var type = CPython.PyType_FromSpec(&spec);
        return type != null ? (PyTypeObject*)type : throw PythonException.Fetch();
    }

    /// <summary>A NUL-terminated UTF-8 copy in native memory (NativeMemory.Free releases it).
    /// Refuses an embedded NUL, naming <paramref name="paramName"/>.</summary>
    internal static byte* NativeString(string s, string paramName = "name")
    {
        var bytes = Utf8Z.Encode(s, paramName);
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        return p;
    }

    // ---- Handle boxes ----

    /// <summary>New reference. <paramref name="ownedDef"/>, if given, is freed with the box. Requires the GIL.</summary>
    internal static NativePyObject* Box(object target, PyMethodDef* ownedDef = null)
    {
        var o = CPython.PyType_GenericAlloc(HandleBox, 0);
        if (o == null) throw PythonException.Fetch();
        ((HandleBoxObject*)o)->gchandle = GCHandle.ToIntPtr(GCHandle.Alloc(target));
        ((HandleBoxObject*)o)->ownedDef = ownedDef;
        return o;
    }

    internal static void FreeDef(PyMethodDef* def)
    {
        NativeMemory.Free(def->ml_name);
        NativeMemory.Free(def->ml_doc);
        NativeMemory.Free(def);
    }

    /// <summary>The boxed target, or null when <paramref name="o"/> is not a box. Requires the GIL.</summary>
    internal static object? Unbox(NativePyObject* o)
    {
        if (o == null || CPython.Py_TYPE(o) != HandleBox) return null;
        nint h = ((HandleBoxObject*)o)->gchandle;
        return h == 0 ? null : GCHandle.FromIntPtr(h).Target;
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void HandleBoxDealloc(NativePyObject* self)
    {
        try
        {
            var box = (HandleBoxObject*)self;
            // In a forked child the handle table is the parent's copy: leave it, free only the object.
            if (box->gchandle != 0 && *Gil.ForkedChildFlag == 0) GCHandle.FromIntPtr(box->gchandle).Free();
            box->gchandle = 0;
            if (box->ownedDef != null) FreeDef(box->ownedDef);
            box->ownedDef = null;
        }
        catch (Exception e) { CallbackFailure.Report("freeing a handle box", e); }
        FreeInstance(self);
    }

    private static void FreeInstance(NativePyObject* self)
    {
        var type = CPython.Py_TYPE(self);
        CPython.PyObject_Free(self);
        CPython.Py_DecRef((NativePyObject*)type); // heap-type instances own a reference to their type
    }

    // ---- Ready awaitables ----

    /// <summary>An awaitable that returns <paramref name="value"/> (or raises <paramref name="exception"/>)
    /// as soon as it is awaited. Takes both references. Requires the GIL.</summary>
    internal static NewReference NewReady(NewReference value, NewReference exception)
    {
        EnsureReady();
        var o = CPython.PyType_GenericAlloc(Ready, 0);
        if (o == null)
        {
            value.Dispose();
            exception.Dispose();
            throw PythonException.Fetch();
        }
        ((ReadyObject*)o)->value = value.Steal();
        ((ReadyObject*)o)->exception = exception.Steal();
        return new NewReference(o);
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReadyDealloc(NativePyObject* self)
    {
        var r = (ReadyObject*)self;
        if (r->value != null) CPython.Py_DecRef(r->value);
        if (r->exception != null) CPython.Py_DecRef(r->exception);
        FreeInstance(self);
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* ReadyAwait(NativePyObject* self)
    {
        CPython.Py_IncRef(self);
        return self;
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* ReadyNext(NativePyObject* self)
    {
        var r = (ReadyObject*)self;
        if (r->exception != null)
        {
            CPython.Py_IncRef(r->exception);
            PythonException.RestoreRaw(r->exception);
            return null;
        }
        var value = r->value != null ? r->value : CPython.Py_None;
        if (value == CPython.Py_None)
        {
            CPython.PyErr_SetObject(CPython.PyExc_StopIteration, null);
            return null;
        }
        // PyErr_SetObject would unpack a tuple (or adopt an exception) as StopIteration's own
        // arguments, so wrap the value in an instance first, as CPython's generators do.
        var args = stackalloc NativePyObject*[2];
        args[1] = value;
        var stop = CPython.PyObject_VectorcallDict(CPython.PyExc_StopIteration, args + 1, 1 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), null);
        if (stop == null) return null;
        CPython.PyErr_SetObject(CPython.PyExc_StopIteration, stop);
        CPython.Py_DecRef(stop);
        return null;
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ReadySend(NativePyObject* self, NativePyObject* arg, NativePyObject** result)
    {
        var r = (ReadyObject*)self;
        if (r->exception != null)
        {
            CPython.Py_IncRef(r->exception);
            PythonException.RestoreRaw(r->exception);
            *result = null;
            return CPython.PYGEN_ERROR;
        }
        var value = r->value != null ? r->value : CPython.Py_None;
        CPython.Py_IncRef(value);
        *result = value;
        return CPython.PYGEN_RETURN;
    }
}
