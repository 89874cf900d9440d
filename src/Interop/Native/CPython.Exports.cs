namespace AsyncioRaw.Interop;

// Exported data: the singletons (their address is the object) and the PyExc_* variables
// (each a NativePyObject* to a static type). All are borrowed, immortal for the interpreter's life.
internal static unsafe partial class CPython
{
    internal static NativePyObject* Py_None;
    internal static NativePyObject* Py_True;
    internal static NativePyObject* Py_False;
    internal static PyTypeObject* PyBool_Type;
    internal static PyTypeObject* PyFloat_Type;
    internal static NativePyObject* PyExc_BaseException;
    internal static NativePyObject* PyExc_Exception;
    internal static NativePyObject* PyExc_StopIteration;
    internal static NativePyObject* PyExc_StopAsyncIteration;
    internal static NativePyObject* PyExc_GeneratorExit;
    internal static NativePyObject* PyExc_KeyboardInterrupt;
    internal static NativePyObject* PyExc_SystemExit;
    internal static NativePyObject* PyExc_MemoryError;
    internal static NativePyObject* PyExc_SystemError;
    internal static NativePyObject* PyExc_RuntimeError;
    internal static NativePyObject* PyExc_TypeError;
    internal static NativePyObject* PyExc_ValueError;
    internal static NativePyObject* PyExc_OverflowError;
    internal static NativePyObject* PyExc_KeyError;
    internal static NativePyObject* PyExc_IndexError;
    internal static NativePyObject* PyExc_AttributeError;
    internal static NativePyObject* PyExc_TimeoutError;
    internal static NativePyObject* PyExc_NotImplementedError;
    internal static NativePyObject* PyExc_UnicodeEncodeError;

    /// <summary>Every data symbol read below (checked for export by native-headers).</summary>
    internal static readonly string[] DataExportNames =
    [
        "_Py_NoneStruct", "_Py_TrueStruct", "_Py_FalseStruct", "PyBool_Type", "PyFloat_Type",
        "PyExc_BaseException", "PyExc_Exception", "PyExc_StopIteration", "PyExc_StopAsyncIteration",
        "PyExc_GeneratorExit", "PyExc_KeyboardInterrupt", "PyExc_SystemExit", "PyExc_MemoryError",
        "PyExc_SystemError", "PyExc_RuntimeError", "PyExc_TypeError", "PyExc_ValueError",
        "PyExc_OverflowError", "PyExc_KeyError", "PyExc_IndexError", "PyExc_AttributeError",
        "PyExc_TimeoutError", "PyExc_NotImplementedError", "PyExc_UnicodeEncodeError",
    ];

    internal static void LoadExports(nint lib)
    {
        Py_None = (NativePyObject*)Data(lib, "_Py_NoneStruct");
        Py_True = (NativePyObject*)Data(lib, "_Py_TrueStruct");
        Py_False = (NativePyObject*)Data(lib, "_Py_FalseStruct");
        PyBool_Type = (PyTypeObject*)Data(lib, "PyBool_Type");
        PyFloat_Type = (PyTypeObject*)Data(lib, "PyFloat_Type");
        PyExc_BaseException = Var(lib, "PyExc_BaseException");
        PyExc_Exception = Var(lib, "PyExc_Exception");
        PyExc_StopIteration = Var(lib, "PyExc_StopIteration");
        PyExc_StopAsyncIteration = Var(lib, "PyExc_StopAsyncIteration");
        PyExc_GeneratorExit = Var(lib, "PyExc_GeneratorExit");
        PyExc_KeyboardInterrupt = Var(lib, "PyExc_KeyboardInterrupt");
        PyExc_SystemExit = Var(lib, "PyExc_SystemExit");
        PyExc_MemoryError = Var(lib, "PyExc_MemoryError");
        PyExc_SystemError = Var(lib, "PyExc_SystemError");
        PyExc_RuntimeError = Var(lib, "PyExc_RuntimeError");
        PyExc_TypeError = Var(lib, "PyExc_TypeError");
        PyExc_ValueError = Var(lib, "PyExc_ValueError");
        PyExc_OverflowError = Var(lib, "PyExc_OverflowError");
        PyExc_KeyError = Var(lib, "PyExc_KeyError");
        PyExc_IndexError = Var(lib, "PyExc_IndexError");
        PyExc_AttributeError = Var(lib, "PyExc_AttributeError");
        PyExc_TimeoutError = Var(lib, "PyExc_TimeoutError");
        PyExc_NotImplementedError = Var(lib, "PyExc_NotImplementedError");
        PyExc_UnicodeEncodeError = Var(lib, "PyExc_UnicodeEncodeError");
    }

    private static void* Data(nint lib, string name)
    {
        var p = AsyncioRaw.PythonLibrary.Symbol(lib, name);
        return p != null ? p : throw new EntryPointNotFoundException($"libpython does not export {name}");
    }

    private static NativePyObject* Var(nint lib, string name) => *(NativePyObject**)Data(lib, name);
}
