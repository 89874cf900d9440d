using System.Runtime.InteropServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// A Python object (a capsule) that keeps a .NET object alive through a GCHandle and frees the
/// handle when Python drops the last reference. This is how .NET exceptions, delegates and tasks
/// ride along inside Python objects.
/// </summary>
internal static unsafe class ManagedHandle
{
    // The capsule name must outlive every capsule: allocated once, never freed. PyCapsule_IsValid
    // compares names as strings, and another copy of this library in the process (a second
    // NativeAOT module, with its own .NET runtime and handle table) makes capsules too: the name
    // carries the address of this copy's Destroy, so a capsule of another copy is never taken for
    // ours (its GCHandle would be read from the wrong runtime). An exception raised by one module
    // and caught by another crosses this way.
    internal static readonly byte* CapsuleName = AllocName(
        $"asyncioraw.gchandle.{(nint)(delegate* unmanaged<NativePyObject*, void>)&Destroy:x}");

    private static byte* AllocName(string name)
    {
        var bytes = Utf8Z.Encode(name, nameof(name));
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        return p;
    }

    /// <summary>A new capsule owning a strong GCHandle to <paramref name="target"/>.</summary>
    internal static PyObject Create(object target)
    {
        using var gil = Gil.Acquire();
        return PyObject.StealOrThrow(CreateRaw(target));
    }

    /// <summary>New reference or NULL with an exception set. Requires the GIL.</summary>
    internal static NativePyObject* CreateRaw(object target)
    {
        var handle = GCHandle.Alloc(target);
        var capsule = CPython.PyCapsule_New((void*)GCHandle.ToIntPtr(handle), CapsuleName, &Destroy);
        if (capsule == null) handle.Free();
        return capsule;
    }

    /// <summary>The .NET object inside <paramref name="obj"/>, or null when it is not one of our capsules.</summary>
    internal static object? Get(PyObject obj)
    {
        using var gil = Gil.Acquire();
        return GetRaw(obj.Handle);
    }

    /// <summary>Borrowed object. Never leaves an error set. Requires the GIL.</summary>
    internal static object? GetRaw(NativePyObject* obj)
    {
        if (CPython.PyCapsule_IsValid(obj, CapsuleName) == 0) return null;
        var p = CPython.PyCapsule_GetPointer(obj, CapsuleName);
        return p == null ? null : GCHandle.FromIntPtr((nint)p).Target;
    }

    [UnmanagedCallersOnly]
    private static void Destroy(NativePyObject* capsule)
    {
        // Runs inside CPython's dealloc with the GIL; nothing may escape.
        try
        {
            var p = CPython.PyCapsule_GetPointer(capsule, CapsuleName);
            if (p != null) GCHandle.FromIntPtr((nint)p).Free();
            else CPython.PyErr_Clear();
        }
        catch (Exception e)
        {
            CallbackFailure.Report("freeing a managed handle", e);
        }
    }
}

/// <summary>Where a failure inside a native callback goes when it cannot become a Python exception.</summary>
internal static class CallbackFailure
{
    /// <summary>To <see cref="AsyncioRawDiagnostics.UnobservedError"/>, or stderr without a
    /// subscriber. Never throws, never blocks.</summary>
    internal static void Report(string what, Exception e) => AsyncioRawDiagnostics.ReportUnobserved(what, e);
}
