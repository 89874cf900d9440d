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
    internal static PyObject ShutDownLoop = null!;     // see BridgeSource
    internal static PyObject? EagerTask;               // asyncio.Task, on 3.12+ (eager_start)

    // Guards only the assignment of the fields above, never Python code: importing asyncio runs
    // Python code, which may hand the GIL to a thread that then waits for this lock (seen: four
    // threads making their first PyFunction at once deadlocked every time).
    private static readonly object s_publish = new();
    private static volatile bool s_ready;
    private static bool s_hookRegistered;

    /// <summary>Requires the GIL. Threads that race here each build the names (without a lock);
    /// the first to publish wins and the others release theirs.</summary>
    internal static void EnsureReady()
    {
        if (s_ready) return;
        var built = Names.Build();
        lock (s_publish)
        {
            if (!s_ready)
            {
                built.Publish();
                if (!s_hookRegistered)
                {
                    s_hookRegistered = true;
                    ObjectFinalizationHooks.Register(static () => s_ready = false);
                }
                s_ready = true;
                return;
            }
        }
        built.Release();
    }

    /// <summary>One thread's set of the names, built before any of it is published.</summary>
    private sealed class Names
    {
        private nint[] _strings = [];
        private PyObject[] _objects = [];
        private PyObject? _eagerTask;

        private static readonly string[] s_stringNames =
        [
            "create_task", "create_future", "add_done_callback", "remove_done_callback", "result",
            "cancelled", "done", "cancel", "set_result", "set_exception", "call_soon", "add_reader",
            "remove_reader", "call_soon_threadsafe", "call_exception_handler", "get_loop", "close",
            "send", "throw", "aclose", "__anext__",
        ];

        internal static Names Build()
        {
            var names = new Names();
            var strings = new List<nint>();
            var objects = new List<PyObject>();
            try
            {
                foreach (var name in s_stringNames) strings.Add((nint)Intern(name));
                var asyncio = Py.Import("asyncio");
                objects.Add(asyncio);
                using (var events = Py.Import("asyncio.events")) objects.Add(events.GetAttr("_get_running_loop"));
                objects.Add(asyncio.GetAttr("ensure_future"));
                objects.Add(asyncio.GetAttr("isfuture"));
                objects.Add(asyncio.GetAttr("CancelledError"));
                objects.Add(asyncio.GetAttr("InvalidStateError"));
                using (var types = Py.Import("types")) objects.Add(types.GetAttr("CoroutineType"));
                objects.Add(asyncio.GetAttr("Future"));
                using (var bridge = Py.Run(BridgeSource, fileName: "<asyncioraw bridge>"))
                {
                    objects.Add(bridge["run_and_report"]);
                    objects.Add(bridge["shutdown"]);
                }
                if (PythonLibrary.Minor >= 12) names._eagerTask = asyncio.GetAttr("Task");
            }
            catch
            {
                foreach (var s in strings) CPython.Py_DecRef((Interop.PyObject*)s);
                foreach (var o in objects) o.Dispose();
                throw;
            }
            names._strings = [.. strings];
            names._objects = [.. objects];
            return names;
        }

        internal void Publish()
        {
            Interop.PyObject* S(int i) => (Interop.PyObject*)_strings[i];
            create_task = S(0); create_future = S(1); add_done_callback = S(2); remove_done_callback = S(3);
            result = S(4); cancelled = S(5); done = S(6); cancel = S(7); set_result = S(8); set_exception = S(9);
            call_soon = S(10); add_reader = S(11); remove_reader = S(12); call_soon_threadsafe = S(13);
            call_exception_handler = S(14); get_loop = S(15); close = S(16); send = S(17); throw_ = S(18);
            aclose = S(19); anext = S(20);
            var o = _objects;
            (Asyncio, GetRunningLoop, EnsureFuture, IsFuture, CancelledError, InvalidStateError) = (o[0], o[1], o[2], o[3], o[4], o[5]);
            (CoroutineType, FutureType, RunAndReport, ShutDownLoop) = (o[6], o[7], o[8], o[9]);
            EagerTask = _eagerTask;
        }

        /// <summary>Another thread published first. Requires the GIL.</summary>
        internal void Release()
        {
            foreach (var s in _strings) CPython.Py_DecRef((Interop.PyObject*)s);
            foreach (var o in _objects) o.Dispose();
            _eagerTask?.Dispose();
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

        def shutdown(loop):
            import asyncio
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                for t in tasks:
                    if not t.cancelled() and t.exception() is not None:
                        loop.call_exception_handler({
                            'message': 'unhandled exception during shutdown',
                            'exception': t.exception(), 'task': t})
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
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
