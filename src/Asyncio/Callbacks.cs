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

    /// <summary>A named function; one method def per function, so __name__ is right. The def is
    /// owned by the function's self (the handle box) and freed with it: CPython's function dealloc
    /// releases self last of all that reads the def, for exactly this use.</summary>
    internal static Interop.PyObject* FastCall(string name, string? doc, FastCallTarget target)
    {
        NativeTypes.EnsureReady();
        var meth = (delegate* unmanaged<Interop.PyObject*, Interop.PyObject**, nint, Interop.PyObject*, Interop.PyObject*>)&FastCallTrampoline;
        var def = NewDef(name, CPython.METH_FASTCALL | CPython.METH_KEYWORDS,
            (delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*>)meth, doc);
        Interop.PyObject* box;
        try { box = NativeTypes.Box(target, ownedDef: def); }
        catch
        {
            NativeTypes.FreeDef(def);
            throw;
        }
        return NewFunction(def, box);
    }

    private static Interop.PyObject* Create(ref PyMethodDef* shared, string name, int flags,
        delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*> meth, object target)
    {
        NativeTypes.EnsureReady();
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

    private static PyMethodDef* NewDef(string name, int flags, delegate* unmanaged<Interop.PyObject*, Interop.PyObject*, Interop.PyObject*> meth, string? doc)
    {
        var d = (PyMethodDef*)NativeMemory.AllocZeroed((nuint)sizeof(PyMethodDef));
        d->ml_name = NativeTypes.NativeString(name);
        d->ml_meth = meth;
        d->ml_flags = flags;
        d->ml_doc = doc is null ? null : NativeTypes.NativeString(doc);
        return d;
    }

    /// <summary>Steals <paramref name="box"/> (the function holds it, or it is released).</summary>
    private static Interop.PyObject* NewFunction(PyMethodDef* def, Interop.PyObject* box)
    {
        var function = CPython.PyCFunction_NewEx(def, box, null);
        CPython.Py_DecRef(box);
        return function != null ? function : throw PythonException.Fetch();
    }

    /// <summary>
    /// What every entry from Python does around the .NET code: record that this thread holds the
    /// GIL, and stop the Python context from following ExecutionContext switches in nested code
    /// (see TaskLocals); restore both on the way out.
    /// </summary>
    private readonly ref struct CallbackScope
    {
        private readonly int _depth;
        private readonly bool _followed;

        public CallbackScope()
        {
            _depth = Gil.EnterCallback();
            _followed = TaskLocals.t_followExecutionContext;
            TaskLocals.t_followExecutionContext = false;
        }

        public void Dispose()
        {
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

    [UnmanagedCallersOnly]
    private static Interop.PyObject* NoArgsTrampoline(Interop.PyObject* self, Interop.PyObject* unused)
    {
        using var scope = new CallbackScope();
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

    [UnmanagedCallersOnly]
    private static Interop.PyObject* OneArgTrampoline(Interop.PyObject* self, Interop.PyObject* arg)
    {
        using var scope = new CallbackScope();
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

    [UnmanagedCallersOnly]
    private static Interop.PyObject* FastCallTrampoline(Interop.PyObject* self, Interop.PyObject** args, nint nargsf, Interop.PyObject* kwnames)
    {
        using var scope = new CallbackScope();
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
