namespace AsyncioRaw.Interop;

// Exported data: the singletons (their address is the object) and the PyExc_* variables
// (each a PyObject* to a static type). All are borrowed, immortal for the interpreter's life.
internal static unsafe partial class CPython
{
    internal static PyObject* Py_None;
    internal static PyObject* Py_True;
    internal static PyObject* Py_False;
    internal static PyTypeObject* PyBool_Type;
    internal static PyTypeObject* PyFloat_Type;
    internal static PyObject* PyExc_BaseException;
    internal static PyObject* PyExc_Exception;
    internal static PyObject* PyExc_StopIteration;
    internal static PyObject* PyExc_StopAsyncIteration;
    internal static PyObject* PyExc_GeneratorExit;
    internal static PyObject* PyExc_KeyboardInterrupt;
    internal static PyObject* PyExc_SystemExit;
    internal static PyObject* PyExc_MemoryError;
    internal static PyObject* PyExc_SystemError;
    internal static PyObject* PyExc_RuntimeError;
    internal static PyObject* PyExc_TypeError;
    internal static PyObject* PyExc_ValueError;
    internal static PyObject* PyExc_OverflowError;
    internal static PyObject* PyExc_KeyError;
    internal static PyObject* PyExc_IndexError;
    internal static PyObject* PyExc_AttributeError;
    internal static PyObject* PyExc_TimeoutError;
    internal static PyObject* PyExc_NotImplementedError;
    internal static PyObject* PyExc_UnicodeEncodeError;

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
        Py_None = (PyObject*)Data(lib, "_Py_NoneStruct");
        Py_True = (PyObject*)Data(lib, "_Py_TrueStruct");
        Py_False = (PyObject*)Data(lib, "_Py_FalseStruct");
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

    private static PyObject* Var(nint lib, string name) => *(PyObject**)Data(lib, name);
}
