using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// import.h, pythonrun.h, moduleobject.h, methodobject.h, weakrefobject.h, context.h.
// All calls require the GIL.
internal static unsafe partial class CPython
{
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyImport_ImportModule(byte* name);

    /// <summary>(Py_CompileString is a macro over this outside the limited API.) flags may be NULL;
    /// optimize -1 means the interpreter's -O level.</summary>
    /// <returns>New reference to a code object, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* Py_CompileStringExFlags(byte* str, byte* filename, int start, PyCompilerFlags* flags, int optimize);

    internal const int Py_single_input = 256;
    internal const int Py_file_input = 257;
    internal const int Py_eval_input = 258;

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyModule_New(byte* name);

    /// <returns>Borrowed reference to the module's __dict__.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyModule_GetDict(NativePyObject* module);

    /// <summary>ml must outlive the function object (we allocate method defs once, natively, for the process).</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyCFunction_NewEx(PyMethodDef* ml, NativePyObject* self, NativePyObject* module);

    internal const int METH_VARARGS = 0x0001;
    internal const int METH_KEYWORDS = 0x0002;
    internal const int METH_NOARGS = 0x0004;
    internal const int METH_O = 0x0008;
    internal const int METH_FASTCALL = 0x0080;

    /// <summary>callback may be NULL; it is called with the weakref when ob dies.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyWeakref_NewRef(NativePyObject* ob, NativePyObject* callback);

    /// <summary>Deprecated in 3.13 in favour of PyWeakref_GetRef (the borrowed result can die under you).</summary>
    /// <returns>Borrowed reference, or None when the referent is dead.</returns>
    [LibraryImport(Libraries.Python), Until(3, 13)]
    internal static partial NativePyObject* PyWeakref_GetObject(NativePyObject* @ref);

    /// <summary>*pobj receives a new reference, or NULL when the referent is dead.</summary>
    /// <returns>1 alive, 0 dead, -1 with an exception set.</returns>
    [LibraryImport(Libraries.Python), Since(3, 13)]
    internal static partial int PyWeakref_GetRef(NativePyObject* @ref, NativePyObject** pobj);

    /// <returns>New reference to a copy of the current context, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyContext_CopyCurrent();

    /// <returns>0, or -1 with RuntimeError set if ctx is already entered.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyContext_Enter(NativePyObject* ctx);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyContext_Exit(NativePyObject* ctx);
}

// pycapsule.h: a Python object carrying a native pointer; we use it to own GCHandles.
internal static unsafe partial class CPython
{
    /// <summary>destructor runs (with the GIL) when the capsule dies; may be NULL.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyCapsule_New(void* pointer, byte* name, delegate* unmanaged<NativePyObject*, void> destructor);

    /// <returns>The pointer, or NULL with an exception set (not a capsule, or another name).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial void* PyCapsule_GetPointer(NativePyObject* capsule, byte* name);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyCapsule_IsValid(NativePyObject* capsule, byte* name);
}
