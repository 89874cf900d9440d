using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// Struct names are the C names (or name it with [CName]) so that the native-headers check can
// compare sizeof/offsetof against Python.h. Only structs whose layout is the same on every
// supported (non-free-threaded) CPython 3.9-3.13 build are declared with fields.

/// <summary>The object header (<c>PyObject_HEAD</c>): 16 bytes on every supported GIL build,
/// release or debug (Py_DEBUG no longer implies Py_TRACE_REFS).
/// We read <c>ob_type</c> only; reference counts go through <c>Py_IncRef</c>/<c>Py_DecRef</c>
/// because 3.12's immortal objects changed what a raw increment means.
/// Skipped: the reference count in the first 8 bytes, whose C type is not one across versions
/// (<c>Py_ssize_t ob_refcnt</c> to 3.11, a union with <c>ob_refcnt_split[2]</c> in 3.12-3.13,
/// <c>uint32_t ob_refcnt</c> + <c>ob_overflow</c> + <c>ob_flags</c> over <c>ob_refcnt_full</c>
/// from 3.14); free-threaded builds lay the header out differently and are refused.</summary>
[StructLayout(LayoutKind.Explicit, Size = 16), CName("PyObject")]
internal unsafe struct NativePyObject
{
    [FieldOffset(8)] public PyTypeObject* ob_type;
}

/// <summary>Opaque: <c>PyTypeObject</c>'s layout differs between versions; never read its fields.</summary>
internal struct PyTypeObject;

/// <summary>Opaque.</summary>
internal struct PyThreadState;

/// <summary>Opaque here: we only ever pass NULL.</summary>
internal struct PyCompilerFlags;

internal enum PyGILState_STATE
{
    PyGILState_LOCKED = 0,
    PyGILState_UNLOCKED = 1,
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PyMethodDef
{
    public byte* ml_name;
    public delegate* unmanaged<NativePyObject*, NativePyObject*, NativePyObject*> ml_meth;
    public int ml_flags;
    public byte* ml_doc;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PyType_Slot
{
    public int slot;
    public void* pfunc;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PyType_Spec
{
    public byte* name;
    public int basicsize;
    public int itemsize;
    public uint flags;
    public PyType_Slot* slots;
}
