using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AsyncioRaw.Interop;

// object.h, objimpl.h. All calls require the GIL unless stated.
internal static unsafe partial class CPython
{
    // Exported functions rather than the header's inline refcount macros: the field layout and
    // meaning changed in 3.12 (immortal objects) and these work the same everywhere.
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial void Py_IncRef(NativePyObject* o);

    /// <remarks>May run arbitrary Python code (__del__, weakref callbacks), so no SuppressGCTransition.</remarks>
    [LibraryImport(Libraries.Python)]
    internal static partial void Py_DecRef(NativePyObject* o);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_GetAttr(NativePyObject* o, NativePyObject* attr_name);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_GetAttrString(NativePyObject* o, byte* attr_name);

    /// <returns>0, or -1 with an exception set. A NULL value deletes the attribute.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_SetAttr(NativePyObject* o, NativePyObject* attr_name, NativePyObject* v);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_SetAttrString(NativePyObject* o, byte* attr_name, NativePyObject* v);

    /// <summary>The default attribute lookup (descriptors of the type, then the instance dict),
    /// bypassing a <c>__getattribute__</c>/<c>__getattr__</c> override.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_GenericGetAttr(NativePyObject* o, NativePyObject* name);

    /// <returns>1 or 0; never fails (exceptions from __getattr__ are swallowed).</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_HasAttr(NativePyObject* o, NativePyObject* attr_name);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_Str(NativePyObject* o);

    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyObject_Repr(NativePyObject* o);

    /// <returns>1, 0, or -1 with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_IsTrue(NativePyObject* o);

    /// <returns>1, 0, or -1 with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial int PyObject_RichCompareBool(NativePyObject* o1, NativePyObject* o2, int opid);

    [LibraryImport(Libraries.Python)]
    internal static partial nint PyObject_Hash(NativePyObject* o);

    [LibraryImport(Libraries.Python)]
    internal static partial int PyCallable_Check(NativePyObject* o);

    /// <returns>New reference (a heap type), or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyType_FromSpec(PyType_Spec* spec);

    /// <returns>The slot's function pointer, or NULL.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial void* PyType_GetSlot(PyTypeObject* type, int slot);

    /// <summary>The type's tp_flags through the exported accessor (the field's offset is not stable).</summary>
    [LibraryImport(Libraries.Python), SuppressGCTransition]
    internal static partial nuint PyType_GetFlags(PyTypeObject* type);

    /// <summary>The type's <c>__name__</c> read from the type object itself: no Python code runs,
    /// whatever the metaclass does.</summary>
    /// <returns>New reference, or NULL with an exception set.</returns>
    [LibraryImport(Libraries.Python), Since(3, 11)]
    internal static partial NativePyObject* PyType_GetName(PyTypeObject* type);

    internal const nuint Py_TPFLAGS_LONG_SUBCLASS = 1u << 24;
    internal const nuint Py_TPFLAGS_LIST_SUBCLASS = 1u << 25;
    internal const nuint Py_TPFLAGS_TUPLE_SUBCLASS = 1u << 26;
    internal const nuint Py_TPFLAGS_BYTES_SUBCLASS = 1u << 27;
    internal const nuint Py_TPFLAGS_UNICODE_SUBCLASS = 1u << 28;
    internal const nuint Py_TPFLAGS_DICT_SUBCLASS = 1u << 29;
    internal const nuint Py_TPFLAGS_BASE_EXC_SUBCLASS = 1u << 30;

    [LibraryImport(Libraries.Python)]
    internal static partial int PyType_IsSubtype(PyTypeObject* a, PyTypeObject* b);

    /// <returns>New reference.</returns>
    [LibraryImport(Libraries.Python)]
    internal static partial NativePyObject* PyType_GenericAlloc(PyTypeObject* type, nint nitems);

    [LibraryImport(Libraries.Python)]
    internal static partial void PyObject_Free(void* p);

    internal const int Py_LT = 0;
    internal const int Py_EQ = 2;

    // Type flags and slot ids used with PyType_FromSpec (typeslots.h).
    // Py_TPFLAGS_DEFAULT is this bit before 3.10 and 0 after (the tag became implicit); the bit is
    // harmless on every version, so heap types we create set it explicitly.
    internal const uint Py_TPFLAGS_HAVE_VERSION_TAG = 1u << 18;
    internal const uint Py_TPFLAGS_BASETYPE = 1u << 10;
    internal const int Py_tp_dealloc = 52;
    internal const int Py_tp_iternext = 63;
    internal const int Py_tp_iter = 62;
    internal const int Py_tp_methods = 64;
    internal const int Py_tp_repr = 66;
    internal const int Py_tp_doc = 56;
    internal const int Py_tp_free = 74;
    internal const int Py_am_await = 77;
    [Since(3, 10)]
    internal const int Py_am_send = 81;

    // PySendResult (3.10+): the am_send return codes.
    [Since(3, 10)]
    internal const int PYGEN_RETURN = 0;
    [Since(3, 10)]
    internal const int PYGEN_NEXT = 1;
    [Since(3, 10)]
    internal const int PYGEN_ERROR = -1;

    /// <summary><c>Py_TYPE(o)</c>: a field read; the header layout is checked by native-headers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static PyTypeObject* Py_TYPE(NativePyObject* o) => o->ob_type;
}
