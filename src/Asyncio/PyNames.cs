using AsyncioRaw.Interop;

namespace AsyncioRaw.Asyncio;

/// <summary>
/// Interned method names and module objects the bridge calls on every operation, created once
/// (with the GIL) and dropped just before the interpreter is finalized.
/// </summary>
internal static unsafe class PyNames
{
    internal static Interop.PyObject* create_task, create_future, add_done_callback, remove_done_callback,
        result, cancelled, done, cancel, set_result, set_exception, call_soon, add_reader, remove_reader,
        call_soon_threadsafe, call_exception_handler, get_loop, close, send, throw_, aclose, anext;

    internal static PyObject Asyncio = null!;
    internal static PyObject GetRunningLoop = null!;   // asyncio.events._get_running_loop (C-accelerated)
    internal static PyObject EnsureFuture = null!;
    internal static PyObject CoroutineType = null!;
    internal static PyObject FutureType = null!;       // _asyncio.Future (Task subclasses it)
    internal static PyObject IsFuture = null!;         // asyncio.isfuture
    internal static PyObject CancelledError = null!;
    internal static PyObject InvalidStateError = null!;
    internal static PyObject RunAndReport = null!;     // see BridgeSource
    internal static PyObject? EagerTask;               // asyncio.Task, on 3.12+ (eager_start)

    private static readonly object s_lock = new();
    private static volatile bool s_ready;

    /// <summary>Requires the GIL.</summary>
    internal static void EnsureReady()
    {
        if (s_ready) return;
        lock (s_lock)
        {
            if (s_ready) return;
            create_task = Intern("create_task");
            create_future = Intern("create_future");
            add_done_callback = Intern("add_done_callback");
            remove_done_callback = Intern("remove_done_callback");
            result = Intern("result");
            cancelled = Intern("cancelled");
            done = Intern("done");
            cancel = Intern("cancel");
            set_result = Intern("set_result");
            set_exception = Intern("set_exception");
            call_soon = Intern("call_soon");
            add_reader = Intern("add_reader");
            remove_reader = Intern("remove_reader");
            call_soon_threadsafe = Intern("call_soon_threadsafe");
            call_exception_handler = Intern("call_exception_handler");
            get_loop = Intern("get_loop");
            close = Intern("close");
            send = Intern("send");
            throw_ = Intern("throw");
            aclose = Intern("aclose");
            anext = Intern("__anext__");
            Asyncio = Py.Import("asyncio");
            using (var events = Py.Import("asyncio.events")) GetRunningLoop = events.GetAttr("_get_running_loop");
            EnsureFuture = Asyncio.GetAttr("ensure_future");
            IsFuture = Asyncio.GetAttr("isfuture");
            CancelledError = Asyncio.GetAttr("CancelledError");
            InvalidStateError = Asyncio.GetAttr("InvalidStateError");
            using (var types = Py.Import("types")) CoroutineType = types.GetAttr("CoroutineType");
            FutureType = Asyncio.GetAttr("Future");
            using (var bridge = Py.Run(BridgeSource, fileName: "<asyncioraw bridge>")) RunAndReport = bridge["run_and_report"];
            if (PythonLibrary.Minor >= 12) EagerTask = Asyncio.GetAttr("Task");
            ObjectFinalizationHooks.Register(static () => s_ready = false);
            s_ready = true;
        }
    }

    // Completing the .NET side from inside the task's last step, instead of through a done
    // callback, saves the loop iteration that call_soon'ed done callbacks cost. The task itself
    // ends quietly (nobody retrieves its result), except for the two exceptions asyncio lets
    // escape the loop.
    private const string BridgeSource = """
        async def run_and_report(coro, report, key):
            try:
                result = await coro
            except (KeyboardInterrupt, SystemExit) as e:
                report(key, False, e)
                raise
            except BaseException as e:
                report(key, False, e)
            else:
                report(key, True, result)
        """;

    private static Interop.PyObject* Intern(string name)
    {
        fixed (byte* p = PythonLibrary.Utf8Z(name))
        {
            var s = CPython.PyUnicode_InternFromString(p);
            return s != null ? s : throw PythonException.Fetch();
        }
    }

    /// <summary>obj.name() — new reference or NULL. Requires the GIL.</summary>
    internal static Interop.PyObject* CallMethod0(Interop.PyObject* obj, Interop.PyObject* name)
    {
        var args = stackalloc Interop.PyObject*[1];
        args[0] = obj;
        return CPython.PyObject_VectorcallMethod(name, args, 1 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), null);
    }

    /// <summary>obj.name(arg) — new reference or NULL. Requires the GIL.</summary>
    internal static Interop.PyObject* CallMethod1(Interop.PyObject* obj, Interop.PyObject* name, Interop.PyObject* arg)
    {
        var args = stackalloc Interop.PyObject*[2];
        args[0] = obj;
        args[1] = arg;
        return CPython.PyObject_VectorcallMethod(name, args, 2 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), null);
    }

    /// <summary>obj.name(a, b) — new reference or NULL. Requires the GIL.</summary>
    internal static Interop.PyObject* CallMethod2(Interop.PyObject* obj, Interop.PyObject* name, Interop.PyObject* a, Interop.PyObject* b)
    {
        var args = stackalloc Interop.PyObject*[3];
        args[0] = obj;
        args[1] = a;
        args[2] = b;
        return CPython.PyObject_VectorcallMethod(name, args, 3 | unchecked((nuint)CPython.PY_VECTORCALL_ARGUMENTS_OFFSET), null);
    }

    /// <summary>Calls and discards the result; throws the Python error. Requires the GIL.</summary>
    internal static void Check(Interop.PyObject* result)
    {
        if (result == null) throw PythonException.Fetch();
        CPython.Py_DecRef(result);
    }

    /// <summary>True/False result of a method call. Requires the GIL.</summary>
    internal static bool CallBool0(Interop.PyObject* obj, Interop.PyObject* name)
    {
        var r = CallMethod0(obj, name);
        if (r == null) throw PythonException.Fetch();
        bool value = r == CPython.Py_True;
        CPython.Py_DecRef(r);
        return value;
    }
}
