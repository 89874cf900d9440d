using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>A callback Python calls with no arguments (call_soon, add_reader, signal handlers).</summary>
internal abstract class NoArgsCallback
{
    internal abstract void Invoke();
}

/// <summary>A callback Python calls with one argument (done callbacks, weakref callbacks).</summary>
internal abstract class OneArgCallback
{
    internal abstract void Invoke(PyBorrowed arg);
}

/// <summary>
/// The .NET side of a Python awaitable whose iterator is .NET code (see NativeTypes.NewStepper):
/// the generator protocol, one step at a time. Each call runs with the GIL, on whichever thread
/// Python steps it from; a Python error is returned by throwing (the trampoline raises it).
/// </summary>
internal abstract class StepTarget
{
    internal const int Yielded = 1, Returned = 0, Raised = -1;

    /// <summary>One step: send <paramref name="sent"/> (None to start or resume) or, when not null,
    /// throw <paramref name="thrown"/> (an exception instance) in. Returns <see cref="Yielded"/> or
    /// <see cref="Returned"/> (finished) with the value, or <see cref="Raised"/> with the Python
    /// error set; a .NET exception thrown from here is raised into Python instead.</summary>
    internal abstract int Step(PyBorrowed sent, PyBorrowed thrown, out NewReference value);

    /// <summary>close(): GeneratorExit at the current await.</summary>
    internal abstract void Close();

    /// <summary>The Python object is being freed (inside its dealloc: must not throw).</summary>
    internal abstract void Dropped();
}

/// <summary>A .NET function Python calls with positional and keyword arguments (vectorcall).</summary>
internal abstract class FastCallTarget
{
    /// <summary>Returns the result (a new reference); may throw (the trampoline raises it into Python).</summary>
    internal abstract NewReference Invoke(PyArgs args);
}

/// <summary>The arguments of a vectorcall, borrowed for the duration of the call.</summary>
internal readonly unsafe ref partial struct PyArgs
{
    private readonly NativePyObject** _args;
    private readonly NativePyObject* _kwnames;
    // Set when the arguments were bound to named parameters: names the argument a failed conversion was for.
    private readonly PyParameters? _parameters;

    internal PyArgs(NativePyObject** args, nint count, NativePyObject* kwnames)
    {
        _args = args;
        Count = count;
        _kwnames = kwnames;
    }

    /// <summary>The number of positional arguments.</summary>
    public nint Count { get; }

    public PyBorrowed this[nint index] =>
        (ulong)index < (ulong)Count ? new(_args[index]) : throw new ArgumentOutOfRangeException(nameof(index));

    public bool HasKeywords => _kwnames != null && CPython.PyTuple_Size(_kwnames) > 0;

    /// <summary>Refuses anything but <paramref name="expected"/> positional arguments.</summary>
    public void ExpectPositional(int expected, string what)
    {
        if (HasKeywords) throw new ArgumentException($"{what} takes no keyword arguments");
        if (Count != expected) throw new ArgumentException($"{what} takes {expected} positional argument(s) but {Count} were given");
    }
}

/// <summary>
/// Builtin function objects whose self is a handle box around a .NET callback. The trampolines
/// are the only places Python enters .NET: they record the GIL as held, catch every exception and
/// turn it into a Python exception (a managed exception escaping into native code ends the process).
/// </summary>
internal static unsafe class Callbacks
{
    /// <summary>
    /// True only while a loop's drain runs .NET continuations directly (see TaskLocals): there the
    /// Python context may follow .NET's ExecutionContext switches. Every entry from Python turns it
    /// off for the code it runs, and restores it on the way out.
    /// </summary>
    [ThreadStatic] internal static bool FollowExecutionContext;

    /// <summary>
    /// What a .NET await of a Python coroutine may hand that coroutine to, to be stepped inside the
    /// Python task whose step is running this .NET code (the asyncio layer's driver). Set only
    /// while such a step runs .NET code directly: every entry from Python clears it for the code
    /// it runs (Python frames in between mean another step, maybe of another task) and restores it.
    /// </summary>
    [ThreadStatic] internal static object? DirectAwaitTarget;

    private static PyMethodDef* s_noArgs;
    private static PyMethodDef* s_oneArg;
    private static PyMethodDef* s_fastCall;

    // A forked child refuses callbacks (see Gil.EnterCallback) but still enters a trampoline to do
    // so: compiling or first-binding one there writes the CLR's code memory, which is shared with
    // the parent (W^X double mapping) and corrupted it. So each trampoline runs once here, before
    // Python can hold a callback; AggressiveOptimization keeps them untiered afterwards.
    private static bool s_warmedUp;

    private sealed class NoOp : NoArgsCallback
    {
        internal override void Invoke() { }
    }

    private sealed class NoOpOneArg : OneArgCallback
    {
        internal override void Invoke(PyBorrowed arg) { }
    }

    private sealed class NoOpFastCall : FastCallTarget
    {
        internal override NewReference Invoke(PyArgs args) => NewReference.None();
    }

    /// <summary>Requires the GIL.</summary>
    private static void WarmUp()
    {
        s_warmedUp = true;
        using (var f = NoArgs(new NoOp())) using (f.Borrow().Call()) { }
        using (var f = OneArg(new NoOpOneArg())) using (f.Borrow().CallOne(PyBorrowed.None)) { }
        using (var f = FastCall(new NoOpFastCall())) using (f.Borrow().CallOne(PyBorrowed.None)) { }
    }

    /// <summary>A builtin function that calls <paramref name="target"/>. Requires the GIL.</summary>
    internal static NewReference NoArgs(NoArgsCallback target) => Create(ref s_noArgs, "dotnet_callback", CPython.METH_NOARGS,
        (delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*>)&NoArgsTrampoline, target);

    internal static NewReference OneArg(OneArgCallback target) => Create(ref s_oneArg, "dotnet_callback", CPython.METH_O,
        (delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*>)&OneArgTrampoline, target);

    /// <summary>An internal callback taking several arguments (shares one method def).</summary>
    internal static NewReference FastCall(FastCallTarget target)
    {
        var meth = (delegate* unmanaged<NativePyObject*, NativePyObject**, nint, NativePyObject*, NativePyObject*>)&FastCallTrampoline;
        return Create(ref s_fastCall, "dotnet_callback", CPython.METH_FASTCALL | CPython.METH_KEYWORDS,
            (delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*>)meth, target);
    }

    /// <summary>A named function; one method def per function, so __name__ is right. The def is
    /// owned by the function's self (the handle box) and freed with it: CPython's function dealloc
    /// releases self last of all that reads the def, for exactly this use.</summary>
    internal static NewReference FastCall(string name, string? doc, FastCallTarget target)
    {
        NativeTypes.EnsureReady();
        if (!s_warmedUp) WarmUp();
        var meth = (delegate* unmanaged<NativePyObject*, NativePyObject**, nint, NativePyObject*, NativePyObject*>)&FastCallTrampoline;
        var def = NewDef(name, CPython.METH_FASTCALL | CPython.METH_KEYWORDS,
            (delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*>)meth, doc);
        NativePyObject* box;
        try { box = NativeTypes.Box(target, ownedDef: def); }
        catch
        {
            NativeTypes.FreeDef(def);
            throw;
        }
        return NewFunction(def, box);
    }

    private static NewReference Create(ref PyMethodDef* shared, string name, int flags,
        delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*> meth, object target)
    {
        NativeTypes.EnsureReady();
        if (!s_warmedUp) WarmUp();
        if (shared == null)
        {
            // Shared by every callback of this kind, so it lives for the process. Two threads may
            // race here: the loser's def is freed (no function was made from it).
            var def = NewDef(name, flags, meth, null);
            fixed (PyMethodDef** slot = &shared)
                if (Interlocked.CompareExchange(ref *(nint*)slot, (nint)def, 0) != 0) NativeTypes.FreeDef(def);
        }
        return NewFunction(shared, NativeTypes.Box(target));
    }

    private static PyMethodDef* NewDef(string name, int flags, delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*> meth, string? doc)
    {
        // Refused before anything is allocated: a name or doc with an embedded NUL.
        Utf8Z.ThrowIfNul(name, nameof(name));
        if (doc != null) Utf8Z.ThrowIfNul(doc, nameof(doc));
        var d = (PyMethodDef*)NativeMemory.AllocZeroed((nuint)sizeof(PyMethodDef));
        d->ml_name = NativeTypes.NativeString(name);
        d->ml_meth = meth;
        d->ml_flags = flags;
        d->ml_doc = doc is null ? null : NativeTypes.NativeString(doc, nameof(doc));
        return d;
    }

    /// <summary>Steals <paramref name="box"/> (the function holds it, or it is released).</summary>
    private static NewReference NewFunction(PyMethodDef* def, NativePyObject* box)
    {
        var function = CPython.PyCFunction_NewEx(def, box, null);
        CPython.Py_DecRef(box);
        return NewReference.OrThrow(function);
    }

    /// <summary>
    /// What every entry from Python does around the .NET code: record that this thread holds the
    /// GIL, and stop the Python context from following ExecutionContext switches in nested code
    /// (see TaskLocals); restore both on the way out. <see cref="Refused"/>: the .NET code must not
    /// run (a forked child, or Python finalizing); the Python error is set, return NULL.
    /// </summary>
    internal readonly ref struct CallbackScope
    {
        private readonly int _depth;
        private readonly bool _followed;
        private readonly object? _directAwaitTarget;

        public CallbackScope()
        {
            _depth = Gil.EnterCallback();
            if (_depth == Gil.CallbackRefused) return;
            _followed = FollowExecutionContext;
            FollowExecutionContext = false;
            _directAwaitTarget = DirectAwaitTarget;
            DirectAwaitTarget = null;
        }

        public bool Refused => _depth == Gil.CallbackRefused;

        public void Dispose()
        {
            if (_depth == Gil.CallbackRefused) return;
            DirectAwaitTarget = _directAwaitTarget;
            FollowExecutionContext = _followed;
            Gil.ExitCallback(_depth);
        }
    }

    // No managed exception may leave these: it would end the process. Each one becomes the
    // pending Python exception and the call returns NULL, as C functions do.

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* NoArgsTrampoline(NativePyObject* self, NativePyObject* unused)
    {
        using var scope = new CallbackScope();
        if (scope.Refused) return null;
        try
        {
            ((NoArgsCallback)NativeTypes.Unbox(self)!).Invoke();
            return NewReference.None().Steal();
        }
        catch (Exception e)
        {
            ExceptionBridge.Raise(e);
            return null;
        }
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* OneArgTrampoline(NativePyObject* self, NativePyObject* arg)
    {
        using var scope = new CallbackScope();
        if (scope.Refused) return null;
        try
        {
            ((OneArgCallback)NativeTypes.Unbox(self)!).Invoke(new PyBorrowed(arg));
            return NewReference.None().Steal();
        }
        catch (Exception e)
        {
            ExceptionBridge.Raise(e);
            return null;
        }
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static NativePyObject* FastCallTrampoline(NativePyObject* self, NativePyObject** args, nint nargsf, NativePyObject* kwnames)
    {
        using var scope = new CallbackScope();
        if (scope.Refused) return null;
        try
        {
            nint nargs = (nint)((ulong)nargsf & ~CPython.PY_VECTORCALL_ARGUMENTS_OFFSET);
            var result = ((FastCallTarget)NativeTypes.Unbox(self)!).Invoke(new PyArgs(args, nargs, kwnames));
            return result.IsNull ? throw new InvalidOperationException("a .NET callback returned no object") : result.Steal();
        }
        catch (Exception e)
        {
            ExceptionBridge.Raise(e);
            return null;
        }
    }
}
