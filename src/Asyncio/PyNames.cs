namespace AsyncioRaw;

/// <summary>
/// Interned method names and module objects the bridge calls on every operation, created once
/// (with the GIL) and dropped just before the interpreter is finalized.
/// </summary>
internal static class PyNames
{
    // Interned method names: PyObject fields, so call sites say PyNames.done, never a raw pointer.
    internal static PyObject create_task = null!, create_future = null!, add_done_callback = null!,
        remove_done_callback = null!, result = null!, cancelled = null!, done = null!, cancel = null!,
        set_result = null!, set_exception = null!, call_soon = null!, add_reader = null!, remove_reader = null!,
        call_soon_threadsafe = null!, call_exception_handler = null!, get_loop = null!, close = null!,
        send = null!, throw_ = null!, aclose = null!, anext = null!, await_ = null!, value = null!;

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
        private PyObject[] _strings = [];
        private PyObject[] _objects = [];
        private PyObject? _eagerTask;

        private static readonly string[] s_stringNames =
        [
            "create_task", "create_future", "add_done_callback", "remove_done_callback", "result",
            "cancelled", "done", "cancel", "set_result", "set_exception", "call_soon", "add_reader",
            "remove_reader", "call_soon_threadsafe", "call_exception_handler", "get_loop", "close",
            "send", "throw", "aclose", "__anext__", "__await__", "value",
        ];

        internal static Names Build()
        {
            var names = new Names();
            var objects = new List<PyObject>();
            try
            {
                foreach (var name in s_stringNames) objects.Add(Intern(name));
                names._strings = [.. objects];
                objects.Clear();
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
                names._objects = [.. objects];
                return names;
            }
            catch
            {
                foreach (var o in objects) o.Dispose();
                names.Release();
                throw;
            }
        }

        internal void Publish()
        {
            var s = _strings;
            (create_task, create_future, add_done_callback, remove_done_callback, result) = (s[0], s[1], s[2], s[3], s[4]);
            (cancelled, done, cancel, set_result, set_exception, call_soon, add_reader) = (s[5], s[6], s[7], s[8], s[9], s[10], s[11]);
            (remove_reader, call_soon_threadsafe, call_exception_handler, get_loop, close) = (s[12], s[13], s[14], s[15], s[16]);
            (send, throw_, aclose, anext, await_, value) = (s[17], s[18], s[19], s[20], s[21], s[22]);
            var o = _objects;
            (Asyncio, GetRunningLoop, EnsureFuture, IsFuture, CancelledError, InvalidStateError) = (o[0], o[1], o[2], o[3], o[4], o[5]);
            (CoroutineType, FutureType, RunAndReport, ShutDownLoop) = (o[6], o[7], o[8], o[9]);
            EagerTask = _eagerTask;
        }

        /// <summary>Another thread published first (or building failed). Requires the GIL.</summary>
        internal void Release()
        {
            foreach (var s in _strings) s.Dispose();
            foreach (var o in _objects) o.Dispose();
            _eagerTask?.Dispose();
        }
    }

    // Completing the .NET side from inside the task's last step, instead of through a done
    // callback, saves the loop iteration that call_soon'ed done callbacks cost. The task itself
    // ends quietly (nobody retrieves its result), except for the two exceptions asyncio lets
    // escape the loop: the task re-raises them, and keeps them as its outcome too, which the .NET
    // side has already been handed; a done callback marks that outcome retrieved, or asyncio would
    // log "Task exception was never retrieved" when the task is collected.
    private const string BridgeSource = """
        from asyncio import current_task as _current_task

        def _retrieved(task):
            task.cancelled() or task.exception()

        async def run_and_report(coro, report, key):
            try:
                result = await coro
            except (KeyboardInterrupt, SystemExit) as e:
                report(key, False, e)
                task = _current_task()
                if task is not None:
                    task.add_done_callback(_retrieved)
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

    private static PyObject Intern(string name) => PyValues.Intern(name);
}
