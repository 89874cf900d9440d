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

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct StepperObject
{
    public NativePyObject ob_base;
    public nint gchandle; // the StepTarget, or 0 once freed
}

internal static unsafe class NativeTypes
{
    /// <summary>An awaitable whose iterator is .NET code (a <see cref="StepTarget"/>): awaited by
    /// a Python coroutine, it is stepped inside that coroutine's task, as a coroutine it awaited
    /// would be (<c>yield from</c>: am_send/tp_iternext, and send/throw/close for delegation).</summary>
    internal static PyTypeObject* Stepper;

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
        var stepper = MakeStepperType();
        bool published = false;
        lock (s_publish)
        {
            if (Ready == null)
            {
                HandleBox = handleBox;
                Stepper = stepper;
                Ready = ready;
                ObjectFinalizationHooks.Register(static () => { Ready = null; HandleBox = null; Stepper = null; });
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
        CPython.Py_DecRef((NativePyObject*)stepper);
    }

    private static nint s_stepperMethods; // PyMethodDef[4]

    private static PyTypeObject* MakeStepperType()
    {
        if (s_stepperMethods == 0)
        {
            // Lives for the process, like the type's name: every stepper type made points at it.
            var defs = (PyMethodDef*)NativeMemory.AllocZeroed(4, (nuint)sizeof(PyMethodDef));
            defs[0] = new PyMethodDef { ml_name = NativeString("send"), ml_flags = CPython.METH_O,
                ml_meth = (delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*>)&StepperSendMethod };
            defs[1] = new PyMethodDef { ml_name = NativeString("throw"), ml_flags = CPython.METH_VARARGS,
                ml_meth = (delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*>)&StepperThrowMethod };
            defs[2] = new PyMethodDef { ml_name = NativeString("close"), ml_flags = CPython.METH_NOARGS,
                ml_meth = (delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*>)&StepperCloseMethod };
            if (Interlocked.CompareExchange(ref s_stepperMethods, (nint)defs, 0) != 0)
                NativeMemory.Free(defs); // (the names leak: a race that happens at most once)
        }
        var slots = new List<(int, nint)>
        {
            (CPython.Py_tp_dealloc, (nint)(delegate* unmanaged<NativePyObject*, void>)&StepperDealloc),
            (CPython.Py_am_await, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*>)&ReadyAwait),
            (CPython.Py_tp_iter, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*>)&ReadyAwait),
            (CPython.Py_tp_iternext, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*>)&StepperNext),
            (CPython.Py_tp_methods, s_stepperMethods),
        };
        if (PythonLibrary.Minor >= 10)
            slots.Add((CPython.Py_am_send, (nint)(delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject**, int>)&StepperSend));
        return MakeType("asyncioraw.DotNetAwaitable", sizeof(StepperObject),
            "Awaits .NET work that awaits Python coroutines: they run inside the awaiting task.", slots);
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

        def warm_up_stepper(make):
            # tp_iternext, send, throw, close; am_send through a coroutine's await; dealloc.
            for step in (lambda s: next(s), lambda s: s.send(None), lambda s: s.throw(ValueError('w')), lambda s: s.close()):
                try:
                    step(make())
                except BaseException:
                    pass
            async def awaiting():
                return await make()
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
        using var warmUpStepper = globals["warm_up_stepper"];
        using var make = Callbacks.FastCall(new WarmUpStepperFactory()).MoveToObject();
        using (warmUpStepper.Call(make)) { }
    }

    private sealed class WarmUpStepperFactory : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args) => NewStepper(new WarmUpStep());
    }

    /// <summary>Yields None once, then returns None.</summary>
    private sealed class WarmUpStep : StepTarget
    {
        private bool _yielded;

        internal override int Step(PyBorrowed sent, PyBorrowed thrown, out NewReference value)
        {
            value = NewReference.None();
            if (_yielded) return Returned;
            _yielded = true;
            return Yielded;
        }

        internal override void Close() { }

        internal override void Dropped() { }
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

    // ---- Steppers ----

    /// <summary>A new awaitable stepped by <paramref name="target"/>. Requires the GIL.</summary>
    internal static NewReference NewStepper(StepTarget target)
    {
        EnsureReady();
        var o = CPython.PyType_GenericAlloc(Stepper, 0);
        if (o == null) throw PythonException.Fetch();
        ((StepperObject*)o)->gchandle = GCHandle.ToIntPtr(GCHandle.Alloc(target));
        return new NewReference(o);
    }

    private static StepTarget? StepperTarget(NativePyObject* self)
    {
        nint h = ((StepperObject*)self)->gchandle;
        return h == 0 ? null : (StepTarget?)GCHandle.FromIntPtr(h).Target;
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StepperDealloc(NativePyObject* self)
    {
        var o = (StepperObject*)self;
        if (o->gchandle != 0 && *Gil.ForkedChildFlag == 0)
        {
            try
            {
                var handle = GCHandle.FromIntPtr(o->gchandle);
                (handle.Target as StepTarget)?.Dropped();
                handle.Free();
            }
            catch (Exception e) { CallbackFailure.Report("freeing a .NET awaitable", e); }
        }
        o->gchandle = 0;
        FreeInstance(self);
    }

    /// <summary>One step through the target; NULL with the error set, or the result's status.</summary>
    private static int StepOnce(NativePyObject* self, NativePyObject* sent, NativePyObject* thrown, out NewReference value)
    {
        value = default;
        using var scope = new Callbacks.CallbackScope();
        if (scope.Refused) return StepTarget.Raised;
        try
        {
            var target = StepperTarget(self) ?? throw new InvalidOperationException("this .NET awaitable was freed");
            return target.Step(new PyBorrowed(sent), new PyBorrowed(thrown), out value);
        }
        catch (Exception e)
        {
            value.Dispose();
            ExceptionBridge.Raise(e);
            return StepTarget.Raised;
        }
    }

    /// <summary>The generator protocol's return: StopIteration(value) raised, NULL returned.</summary>
    private static NativePyObject* RaiseStopIteration(NewReference value)
    {
        using (value)
        {
            if (value.IsNull || value.Borrow().IsNoneObject)
            {
                CPython.PyErr_SetObject(CPython.PyExc_StopIteration, null);
                return null;
            }
            // As in ReadyNext: an instance, so that a tuple or exception value is not unpacked.
            var args = stackalloc NativePyObject*[2];
            args[1] = value.Borrow().Pointer;
            var stop = CPython.PyObject_VectorcallDict(CPython.PyExc_StopIteration, args + 1, 1 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), null);
            if (stop == null) return null;
            CPython.PyErr_SetObject(CPython.PyExc_StopIteration, stop);
            CPython.Py_DecRef(stop);
            return null;
        }
    }

    private static NativePyObject* ToIteratorResult(int status, NewReference value) =>
        status == StepTarget.Yielded ? value.Steal()
        : status == StepTarget.Returned ? RaiseStopIteration(value)
        : null;

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* StepperNext(NativePyObject* self)
    {
        int status = StepOnce(self, CPython.Py_None, null, out var value);
        return ToIteratorResult(status, value);
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int StepperSend(NativePyObject* self, NativePyObject* arg, NativePyObject** result)
    {
        int status = StepOnce(self, arg, null, out var value);
        *result = status == StepTarget.Raised ? null : value.Steal();
        return status == StepTarget.Yielded ? CPython.PYGEN_NEXT : status == StepTarget.Returned ? CPython.PYGEN_RETURN : CPython.PYGEN_ERROR;
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* StepperSendMethod(NativePyObject* self, NativePyObject* arg)
    {
        int status = StepOnce(self, arg, null, out var value);
        return ToIteratorResult(status, value);
    }

    /// <summary>throw(exc) or the legacy throw(type[, value[, traceback]]): normalized to one
    /// exception instance, as generators do, before the target sees it.</summary>
    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* StepperThrowMethod(NativePyObject* self, NativePyObject* args)
    {
        nint n = CPython.PyTuple_Size(args);
        if (n < 1 || n > 3)
        {
            fixed (byte* m = "throw expected 1 to 3 arguments\0"u8) CPython.PyErr_SetString(CPython.PyExc_TypeError, m);
            return null;
        }
        var first = CPython.PyTuple_GetItem(args, 0);
        var second = n >= 2 ? CPython.PyTuple_GetItem(args, 1) : null;
        var tb = n >= 3 ? CPython.PyTuple_GetItem(args, 2) : null;
        // PyErr_SetObject makes the instance from a class (and refuses what is neither).
        if (new PyBorrowed(first).IsExceptionInstance)
        {
            if (second != null && second != CPython.Py_None)
            {
                fixed (byte* m = "instance exception may not have a separate value\0"u8) CPython.PyErr_SetString(CPython.PyExc_TypeError, m);
                return null;
            }
            CPython.PyErr_SetObject((NativePyObject*)CPython.Py_TYPE(first), first);
        }
        else if (IsExceptionClass(first))
        {
            CPython.PyErr_SetObject(first, second == CPython.Py_None ? null : second);
        }
        else
        {
            fixed (byte* m = "exceptions must be classes or instances deriving from BaseException\0"u8) CPython.PyErr_SetString(CPython.PyExc_TypeError, m);
            return null;
        }
        var exc = PythonException.FetchRaw();
        if (exc == null) return null;
        if (tb != null && tb != CPython.Py_None) CPython.PyException_SetTraceback(exc, tb);
        int status = StepOnce(self, CPython.Py_None, exc, out var value);
        CPython.Py_DecRef(exc);
        return ToIteratorResult(status, value);
    }

    private static bool IsExceptionClass(NativePyObject* o) =>
        (CPython.PyType_GetFlags(CPython.Py_TYPE(o)) & TypeSubclassFlag) != 0
        && (CPython.PyType_GetFlags((PyTypeObject*)o) & CPython.Py_TPFLAGS_BASE_EXC_SUBCLASS) != 0;

    private const nuint TypeSubclassFlag = 1u << 31; // Py_TPFLAGS_TYPE_SUBCLASS: o is a type

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* StepperCloseMethod(NativePyObject* self, NativePyObject* unused)
    {
        using var scope = new Callbacks.CallbackScope();
        if (scope.Refused) return null;
        try
        {
            StepperTarget(self)?.Close();
            return NewReference.None().Steal();
        }
        catch (Exception e)
        {
            ExceptionBridge.Raise(e);
            return null;
        }
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
