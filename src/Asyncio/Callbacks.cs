using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw.Asyncio;

/// <summary>A callback Python calls with no arguments (call_soon, add_reader, signal handlers).</summary>
internal abstract class NoArgsCallback
{
    internal abstract void Invoke();
}

/// <summary>A callback Python calls with one argument (done callbacks, weakref callbacks).</summary>
internal abstract unsafe class OneArgCallback
{
    /// <param name="arg">Borrowed.</param>
    internal abstract void Invoke(Interop.PyObject* arg);
}

/// <summary>A .NET function Python calls with positional and keyword arguments (vectorcall).</summary>
internal abstract unsafe class FastCallTarget
{
    /// <summary>args are borrowed. Returns a new reference; may throw (the trampoline raises it into Python).</summary>
    internal abstract Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames);
}

/// <summary>
/// Builtin function objects whose self is a handle box around a .NET callback. The trampolines
/// are the only places Python enters .NET: they record the GIL as held, catch every exception and
/// turn it into a Python exception (a managed exception escaping into native code ends the process).
/// </summary>
internal static unsafe class Callbacks
{
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
        internal override void Invoke(Interop.PyObject* arg) { }
    }

    private sealed class NoOpFastCall : FastCallTarget
    {
        internal override Interop.PyObject* Invoke(Interop.PyObject** args, nint nargs, Interop.PyObject* kwnames) => NewNone();
    }

    /// <summary>Requires the GIL.</summary>
    private static void WarmUp()
    {
        s_warmedUp = true;
        var args = stackalloc Interop.PyObject*[2];
        args[1] = CPython.Py_None;
        CallOnce(NoArgs(new NoOp()), args + 1, 0);
        CallOnce(OneArg(new NoOpOneArg()), args + 1, 1);
        CallOnce(FastCall(new NoOpFastCall()), args + 1, 1);

        static void CallOnce(Interop.PyObject* function, Interop.PyObject** args, nint nargs)
        {
            var r = PyObject.VectorcallRaw(function, args, nargs);
            CPython.Py_DecRef(function);
            if (r == null) throw PythonException.Fetch();
            CPython.Py_DecRef(r);
        }
    }

    /// <summary>New reference to a builtin function that calls <paramref name="target"/>. Requires the GIL.</summary>
    internal static Interop.PyObject* NoArgs(NoArgsCallback target) => Create(ref s_noArgs, "dotnet_callback", CPython.METH_NOARGS,
        (delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*>)&NoArgsTrampoline, target);

    internal static Interop.PyObject* OneArg(OneArgCallback target) => Create(ref s_oneArg, "dotnet_callback", CPython.METH_O,
        (delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*>)&OneArgTrampoline, target);

    /// <summary>An internal callback taking several arguments (shares one method def).</summary>
    internal static Interop.PyObject* FastCall(FastCallTarget target)
    {
        var meth = (delegate* unmanaged<Interop.PyObject*, Interop.PyObject**, nint, Interop.PyObject*, Interop.PyObject*>)&FastCallTrampoline;
        return Create(ref s_fastCall, "dotnet_callback", CPython.METH_FASTCALL | CPython.METH_KEYWORDS,
            (delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*>)meth, target);
    }

    /// <summary>A named function; one method def per function, so __name__ is right.</summary>
    internal static Interop.PyObject* FastCall(string name, string? doc, FastCallTarget target)
    {
        PyMethodDef* def = null;
        var meth = (delegate* unmanaged<Interop.PyObject*, Interop.PyObject**, nint, Interop.PyObject*, Interop.PyObject*>)&FastCallTrampoline;
        return Create(ref def, name, CPython.METH_FASTCALL | CPython.METH_KEYWORDS,
            (delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*>)meth, target, doc);
    }

    private static Interop.PyObject* Create(ref PyMethodDef* def, string name, int flags,
        delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*> meth, object target, string? doc = null)
    {
        NativeTypes.EnsureReady();
        if (!s_warmedUp) WarmUp();
        if (def == null)
        {
            // Method defs must outlive every function made from them: allocated once, never freed.
            var d = (PyMethodDef*)NativeMemory.AllocZeroed((nuint)sizeof(PyMethodDef));
            d->ml_name = NativeTypes.NativeString(name);
            d->ml_meth = meth;
            d->ml_flags = flags;
            d->ml_doc = doc is null ? null : NativeTypes.NativeString(doc);
            def = d;
        }
        var box = NativeTypes.Box(target);
        var function = CPython.PyCFunction_NewEx(def, box, null);
        CPython.Py_DecRef(box); // the function holds it
        return function != null ? function : throw PythonException.Fetch();
    }

    /// <summary>
    /// What every entry from Python does around the .NET code: record that this thread holds the
    /// GIL, and stop the Python context from following ExecutionContext switches in nested code
    /// (see TaskLocals); restore both on the way out. <see cref="Refused"/>: the .NET code must not
    /// run (a forked child, or Python finalizing); the Python error is set, return NULL.
    /// </summary>
    private readonly ref struct CallbackScope
    {
        private readonly int _depth;
        private readonly bool _followed;

        public CallbackScope()
        {
            _depth = Gil.EnterCallback();
            if (_depth == Gil.CallbackRefused) return;
            _followed = TaskLocals.t_followExecutionContext;
            TaskLocals.t_followExecutionContext = false;
        }

        public bool Refused => _depth == Gil.CallbackRefused;

        public void Dispose()
        {
            if (_depth == Gil.CallbackRefused) return;
            TaskLocals.t_followExecutionContext = _followed;
            Gil.ExitCallback(_depth);
        }
    }

    private static Interop.PyObject* NewNone()
    {
        CPython.Py_IncRef(CPython.Py_None);
        return CPython.Py_None;
    }

    // No managed exception may leave these: it would end the process. Each one becomes the
    // pending Python exception and the call returns NULL, as C functions do.

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Interop.PyObject* NoArgsTrampoline(Interop.PyObject* self, Interop.PyObject* unused)
    {
        using var scope = new CallbackScope();
        if (scope.Refused) return null;
        try
        {
            ((NoArgsCallback)NativeTypes.Unbox(self)!).Invoke();
            return NewNone();
        }
        catch (Exception e)
        {
            ExceptionBridge.Raise(e);
            return null;
        }
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Interop.PyObject* OneArgTrampoline(Interop.PyObject* self, Interop.PyObject* arg)
    {
        using var scope = new CallbackScope();
        if (scope.Refused) return null;
        try
        {
            ((OneArgCallback)NativeTypes.Unbox(self)!).Invoke(arg);
            return NewNone();
        }
        catch (Exception e)
        {
            ExceptionBridge.Raise(e);
            return null;
        }
    }

    [UnmanagedCallersOnly, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Interop.PyObject* FastCallTrampoline(Interop.PyObject* self, Interop.PyObject** args, nint nargsf, Interop.PyObject* kwnames)
    {
        using var scope = new CallbackScope();
        if (scope.Refused) return null;
        try
        {
            nint nargs = (nint)((ulong)nargsf & ~CPython.PY_VECTORCALL_ARGUMENTS_OFFSET);
            return ((FastCallTarget)NativeTypes.Unbox(self)!).Invoke(args, nargs, kwnames);
        }
        catch (Exception e)
        {
            ExceptionBridge.Raise(e);
            return null;
        }
    }
}
