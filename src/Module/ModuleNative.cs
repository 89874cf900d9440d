using System.Runtime.InteropServices;
using System.Text;

namespace AsyncioRaw.Module;

/// <summary>
/// The few C API entries a module's PyInit needs that the interop layer does not expose
/// (module creation from a definition, setting ImportError, the interpreter identity). They are
/// resolved from the same handle the interop layer uses (<see cref="PythonLibrary.Load"/>): inside
/// a <c>python3</c> process that is the process itself, so no second libpython is ever loaded.
/// All calls require the GIL.
/// </summary>
internal static unsafe class ModuleNative
{
    // PyModuleDef_Base and PyModuleDef from moduleobject.h (release builds; Py_TRACE_REFS debug
    // builds have a different PyObject header and are not supported by the interop layer either).
    [StructLayout(LayoutKind.Sequential)]
    internal struct PyModuleDef
    {
        public nint ob_refcnt;      // PyObject_HEAD_INIT(NULL): 1
        public nint ob_type;        // NULL
        public nint m_init;
        public nint m_index;
        public nint m_copy;
        public byte* m_name;
        public byte* m_doc;
        public nint m_size;         // -1: single-phase, state in globals, no sub-interpreters
        public nint m_methods;
        public nint m_slots;
        public nint m_traverse;
        public nint m_clear;
        public nint m_free;
    }

    /// <summary>PyModuleDef_Slot: an int id, padding, a pointer.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PyModuleDef_Slot
    {
        public int slot;
        public nint value;
    }

    internal const int Py_mod_exec = 2;
    /// <summary>3.12+: older versions refuse unknown slot ids, so it is only added there.</summary>
    internal const int Py_mod_multiple_interpreters = 3;
    internal const nint Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED = 0;

    private static nint Export(string name) => NativeLibrary.GetExport(PythonLibrary.Load(), name);

    /// <summary>Makes <paramref name="def"/> a Python object (multi-phase initialization: what a
    /// PyInit function returns). The def must live for the process.</summary>
    /// <returns>The def as a PyObject* (borrowed: the def is static), never NULL.</returns>
    internal static nint PyModuleDef_Init(PyModuleDef* def) =>
        ((delegate* unmanaged<PyModuleDef*, nint>)Export("PyModuleDef_Init"))(def);

    /// <returns>The definition the module was created from (borrowed), or NULL (with an exception
    /// set only when <paramref name="module"/> is not a module).</returns>
    internal static PyModuleDef* PyModule_GetDef(nint module) =>
        ((delegate* unmanaged<nint, PyModuleDef*>)Export("PyModule_GetDef"))(module);

    internal static void Py_IncRef(nint o) => ((delegate* unmanaged<nint, void>)Export("Py_IncRef"))(o);

    internal static void Py_DecRef(nint o) => ((delegate* unmanaged<nint, void>)Export("Py_DecRef"))(o);

    /// <returns>Borrowed reference to the pending exception type, or 0.</returns>
    internal static nint PyErr_Occurred() => ((delegate* unmanaged<nint>)Export("PyErr_Occurred"))();

    /// <summary>Sets ImportError(message) as the pending exception. Never throws.</summary>
    internal static void SetImportError(string message)
    {
        try
        {
            var type = *(nint*)Export("PyExc_ImportError");
            fixed (byte* p = NullTerminated(message))
                ((delegate* unmanaged<nint, byte*, void>)Export("PyErr_SetString"))(type, p);
        }
        catch (Exception)
        {
            // Nothing else can be done: CPython reports "initialization failed without raising an
            // exception" (SystemError) for a NULL return with no error, which is still an error.
        }
    }

    /// <summary>True when the calling thread runs in the main interpreter (not a sub-interpreter).</summary>
    internal static bool InMainInterpreter()
    {
        var current = ((delegate* unmanaged<nint>)Export("PyInterpreterState_Get"))();
        var main = ((delegate* unmanaged<nint>)Export("PyInterpreterState_Main"))();
        return current == main;
    }

    internal static byte* NativeString(string s)
    {
        var bytes = NullTerminated(s);
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        return p;
    }

    private static byte[] NullTerminated(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }
}
