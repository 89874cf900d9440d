using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>Module-level operations: import, run source text, the shared singletons.</summary>
public static unsafe class Py
{
    private static PyObject? s_none, s_true, s_false;

    /// <summary>Python's None (a shared instance: disposing it does nothing).</summary>
    public static PyObject None => s_none ??= Shared(CPython.Py_None);
    /// <summary>Python's True (a shared instance: disposing it does nothing).</summary>
    public static PyObject True => s_true ??= Shared(CPython.Py_True);
    /// <summary>Python's False (a shared instance: disposing it does nothing).</summary>
    public static PyObject False => s_false ??= Shared(CPython.Py_False);

    private static PyObject Shared(NativePyObject* immortal)
    {
        if (!PythonRuntime.IsInitialized) PythonRuntime.ThrowNotRunning();
        return PyObject.Shared(immortal);
    }

    /// <summary><c>import name</c>; the module object.</summary>
    public static PyObject Import(string name)
    {
        using var gil = Gil.Acquire();
        fixed (byte* n = Utf8Z.Encode(name, nameof(name)))
            return PyObject.StealOrThrow(CPython.PyImport_ImportModule(n));
    }

    /// <summary>A new globals dict with <c>__builtins__</c> set, for <see cref="Run"/> and <see cref="Eval"/>.</summary>
    public static PyObject NewGlobals()
    {
        using var gil = Gil.Acquire();
        var globals = PyObject.StealOrThrow(CPython.PyDict_New());
        fixed (byte* k = "__builtins__"u8)
            PythonException.ThrowIfMinusOne(CPython.PyDict_SetItemString(globals.Handle, k, CPython.PyEval_GetBuiltins()));
        return globals;
    }

    /// <summary>Executes statements; returns the globals they ran in (a new dict when none is given).</summary>
    public static PyObject Run(string source, PyObject? globals = null, string fileName = "<string>")
    {
        using var gil = Gil.Acquire();
        var g = globals?.NewReference() ?? NewGlobals();
        try
        {
            using var _ = Evaluate(source, g, CPython.Py_file_input, fileName, nameof(source));
            return g;
        }
        catch
        {
            g.Dispose();
            throw;
        }
    }

    /// <summary>Evaluates one expression.</summary>
    public static PyObject Eval(string expression, PyObject? globals = null)
    {
        using var gil = Gil.Acquire();
        if (globals is not null) return Evaluate(expression, globals, CPython.Py_eval_input, "<string>", nameof(expression));
        using var g = NewGlobals();
        return Evaluate(expression, g, CPython.Py_eval_input, "<string>", nameof(expression));
    }

    private static PyObject Evaluate(string source, PyObject globals, int start, string fileName, string sourceParam)
    {
        NativePyObject* code;
        fixed (byte* s = Utf8Z.Encode(source, sourceParam))
        fixed (byte* f = Utf8Z.Encode(fileName, nameof(fileName)))
            code = CPython.Py_CompileStringExFlags(s, f, start, null, -1);
        using var codeObject = PyObject.StealOrThrow(code);
        return PyObject.StealOrThrow(CPython.PyEval_EvalCode(code, globals.Handle, globals.Handle));
    }

    /// <summary>
    /// A module named <paramref name="name"/> made from source text. With <paramref name="register"/>
    /// it is put in <c>sys.modules</c> so Python code can import it.
    /// </summary>
    public static PyObject CreateModule(string name, string source, bool register = false)
    {
        // Checked before the module exists: it would otherwise stay in sys.modules half made.
        Utf8Z.ThrowIfNul(source, nameof(source));
        using var gil = Gil.Acquire();
        NativePyObject* m;
        fixed (byte* n = Utf8Z.Encode(name, nameof(name))) m = CPython.PyModule_New(n);
        var module = PyObject.StealOrThrow(m);
        try
        {
            var dict = CPython.PyModule_GetDict(module.Handle); // borrowed
            fixed (byte* k = "__builtins__"u8)
                PythonException.ThrowIfMinusOne(CPython.PyDict_SetItemString(dict, k, CPython.PyEval_GetBuiltins()));
            if (register)
            {
                using var sys = Import("sys");
                using var modules = sys.GetAttr("modules");
                modules[name] = module;
            }
            using var globals = PyObject.FromBorrowed(dict);
            using var _ = Evaluate(source, globals, CPython.Py_file_input, $"<{name}>", nameof(source));
            return module;
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }
}
