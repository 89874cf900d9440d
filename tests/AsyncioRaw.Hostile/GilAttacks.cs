using System.Diagnostics;
using System.Reflection;

namespace AsyncioRaw.Hostile;

/// <summary>Attacks on the GIL and on object lifetime across threads.</summary>
internal static class GilAttacks
{
    // Counts the interpreter's thread states through the C API (ctypes.pythonapi keeps the GIL):
    // idle ones are invisible to sys._current_frames().
    private const string ThreadStateCounter = """
        import ctypes
        _api = ctypes.pythonapi
        _api.PyInterpreterState_Main.restype = ctypes.c_void_p
        _api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
        _api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
        _api.PyThreadState_Next.restype = ctypes.c_void_p
        _api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
        _api.PyGILState_Ensure.restype = ctypes.c_int
        _api.PyGILState_Release.argtypes = [ctypes.c_int]
        def gilstate_ok():
            # Deadlocks if this thread lost its gilstate binding (3.12+ deleting another thread's
            # bound state clears the deleting thread's slot).
            s = _api.PyGILState_Ensure()
            _api.PyGILState_Release(s)
            return _api.PyGILState_Check()
        def count():
            n = 0
            t = _api.PyInterpreterState_ThreadHead(_api.PyInterpreterState_Main())
            while t:
                n += 1
                t = _api.PyThreadState_Next(t)
            return n
        """;

    private static int TrackedThreads()
    {
        var field = typeof(Gil).GetField("s_threads", BindingFlags.NonPublic | BindingFlags.Static)!;
        var set = field.GetValue(null)!;
        lock (set) return (int)set.GetType().GetProperty("Count")!.GetValue(set)!;
    }

    private static void Collect()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    /// <summary>12,500 short-lived threads each take the GIL once. Every one used to leave its
    /// Python thread state (and its entry in Gil's thread list) behind for good.</summary>
    [Attack("gil.thread_churn")]
    private static void ThreadChurn()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var count = Outcome.Define(ThreadStateCounter, "count");
        using var probe = Outcome.Define("def probe(x):\n    return x + 1\n", "probe");
        const int Threads = 12_500, Batch = 50;

        long wrong = 0;
        void Churn(bool python)
        {
            for (int done = 0; done < Threads; done += Batch)
            {
                var batch = new Thread[Batch];
                for (int i = 0; i < Batch; i++)
                {
                    int n = done + i;
                    batch[i] = python
                        ? new Thread(() => { if (probe.Call<long, long>(n) != n + 1) Interlocked.Increment(ref wrong); })
                        : new Thread(() => { if (n < 0) wrong++; });
                    batch[i].Start();
                }
                foreach (var t in batch) t.Join();
                // Retired threads are noticed by the GC: give it a chance, as a running host would.
                if (done % 2_500 == 0) Collect();
            }
            Collect();
        }
        long Rss()
        {
            using var self = Process.GetCurrentProcess();
            return self.WorkingSet64;
        }

        // What the same churn costs a .NET process without Python, to subtract.
        long rss0 = Rss();
        Churn(python: false);
        long rssBaseline = Rss() - rss0;

        long statesBefore = count.Call<long>();
        int trackedBefore = TrackedThreads();
        long rssBefore = Rss();
        Churn(python: true);
        using (Gil.Acquire()) { } // the next outermost acquisition frees what the dead threads left
        long statesAfter = count.Call<long>();
        int trackedAfter = TrackedThreads();
        using (var globals = count.GetAttr("__globals__"))
        using (var gilstateOk = globals["gilstate_ok"])
            Outcome.Report("gilstate_check", Outcome.Within(Task.Run(() => gilstateOk.Call<long>()), 10_000, "PyGILState_Ensure after reaping"));
        // The reaping thread itself, too (it took the GIL last, above).
        using (var globals = count.GetAttr("__globals__"))
        using (var gilstateOk = globals["gilstate_ok"])
            Outcome.Report("gilstate_check_here", gilstateOk.Call<long>());
        long rssGrowth = Rss() - rssBefore;
        Outcome.Report("wrong", wrong);
        Outcome.Report("states_before", statesBefore);
        Outcome.Report("states_after", statesAfter);
        Outcome.Report("states_growth", statesAfter - statesBefore);
        Outcome.Report("tracked_growth", trackedAfter - trackedBefore);
        Outcome.Report("rss_per_thread_plain", (rssBaseline / (double)Threads).ToString("F1"));
        Outcome.Report("rss_per_thread", (rssGrowth / (double)Threads).ToString("F1"));
        // Finalization after reaping (3.12+ leaves one helper state for Py_FinalizeEx to free).
        Outcome.Try("shutdown", () => PythonRuntime.Shutdown());
    }

    /// <summary>Thread-pool threads (which the pool retires and recreates) calling Python keep
    /// working after the dead threads' states were freed, and a reused GIL still works everywhere.</summary>
    [Attack("gil.thread_churn_mixed")]
    private static void ThreadChurnMixed()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var count = Outcome.Define(ThreadStateCounter, "count");
        using var probe = Outcome.Define("def probe(x):\n    return x * 2\n", "probe");
        long wrong = 0;
        for (int round = 0; round < 20; round++)
        {
            var threads = Enumerable.Range(0, 20).Select(i => new Thread(() =>
            {
                for (int k = 0; k < 20; k++)
                    if (probe.Call<long, long>(k) != 2 * k) Interlocked.Increment(ref wrong);
            })).ToArray();
            foreach (var t in threads) t.Start();
            // Meanwhile pool threads and this thread use Python too, while dead states are freed.
            var pool = Enumerable.Range(0, 20).Select(i => Task.Run(() => probe.Call<long, long>(i))).ToArray();
            for (int k = 0; k < 50; k++) if (probe.Call<long, long>(k) != 2 * k) wrong++;
            foreach (var t in threads) t.Join();
            Outcome.Within(Task.WhenAll(pool), 10_000, "pool calls");
            Collect();
        }
        using (Gil.Acquire()) Outcome.Report("held_check", Gil.IsHeld);
        Outcome.Report("wrong", wrong);
        Outcome.Report("states_after", count.Call<long>());
    }

    /// <summary>Python threads call a .NET function that releases the GIL and takes it again
    /// through Gil.Acquire: their thread states belong to Python (deleted when the thread ends) and
    /// must never be kept or freed by us.</summary>
    [Attack("gil.python_threads_reenter")]
    private static void PythonThreadsReenter()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var count = Outcome.Define(ThreadStateCounter, "count");
        using var add = Outcome.Define("def add(x):\n    return x + 1\n", "add");
        using var fn = PyFunction.Create<long, long>("reenter", x =>
        {
            using (Gil.AllowThreads())
            using (Gil.Acquire())
                return add.Call<long, long>(x);
        });
        using (var run = Outcome.Define("""
            import threading
            def run(fn, n):
                results = []
                def body(i):
                    results.append(fn(i) == i + 1)
                for batch in range(n // 20):
                    ts = [threading.Thread(target=body, args=(batch * 20 + k,)) for k in range(20)]
                    for t in ts: t.start()
                    for t in ts: t.join()
                return sum(results)
            """, "run"))
        {
            long before = count.Call<long>();
            Outcome.Report("correct", Outcome.Within(Task.Run(() => run.Call<PyObject, long, long>(fn, 400)), 30_000, "python threads"));
            Collect();
            using (Gil.Acquire()) { }
            Collect();
            using (Gil.Acquire()) { }
            Outcome.Report("states_growth", count.Call<long>() - before);
        }
        Outcome.Try("shutdown", () => PythonRuntime.Shutdown());
    }

    /// <summary>One thread runs a generator (whose body releases the GIL) while another disposes
    /// the only reference to it: the generator used to be freed while its frame was executing.</summary>
    [Attack("gil.dispose_during_call")]
    private static void DisposeDuringCall()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var make = Outcome.Define("""
            import sys, time
            unraisable = []
            sys.unraisablehook = lambda u: unraisable.append(repr(u.exc_value))
            def unraisable_count():
                return len(unraisable)
            def make():
                def g():
                    for i in range(4):
                        time.sleep(0.0005)
                        yield i
                return g()
            """, "make");
        long wrong = 0, disposedSeen = 0, completed = 0;
        var rng = new Random(1);
        for (int round = 0; round < 400; round++)
        {
            var gen = make.Call();
            int delayUs = rng.Next(0, 2500);
            var consumer = new Thread(() =>
            {
                try
                {
                    for (long expected = 0; ; expected++)
                    {
                        using var item = gen.Next();
                        if (item is null) { Interlocked.Increment(ref completed); return; }
                        if (item.As<long>() != expected) Interlocked.Increment(ref wrong);
                    }
                }
                catch (ObjectDisposedException) { Interlocked.Increment(ref disposedSeen); }
                catch (Exception e) { Outcome.Report("unexpected", Outcome.Describe(e)); Interlocked.Increment(ref wrong); }
            });
            consumer.Start();
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed.TotalMilliseconds * 1000 < delayUs) Thread.SpinWait(20);
            // Disposed from a thread without the GIL (deferred) or holding it (at once), alternately.
            if (round % 2 == 0) gen.Dispose();
            else using (Gil.Acquire()) gen.Dispose();
            if (!consumer.Join(10_000)) Outcome.Hang("consumer");
        }
        Collect();
        using (Gil.Acquire()) { }
        // A generator freed while running reports "generator already executing" as unraisable.
        using (var globals = make.GetAttr("__globals__"))
        using (var unraisable = globals["unraisable_count"])
            Outcome.Report("unraisable", unraisable.Call<long>());
        Outcome.Report("wrong", wrong);
        Outcome.Report("disposed_seen", disposedSeen);
        Outcome.Report("completed", completed);
        Outcome.Report("survived", "yes");
    }

    /// <summary>Many threads call one function that switches the GIL while others dispose it.</summary>
    [Attack("gil.dispose_while_calling")]
    private static void DisposeWhileCalling()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var factory = Outcome.Define("""
            import time
            def factory():
                class Slow:
                    def __call__(self, x):
                        time.sleep(0)
                        return x + 1
                return Slow().__call__
            """, "factory");
        long wrong = 0, disposedSeen = 0, ok = 0;
        for (int round = 0; round < 300; round++)
        {
            var fn = factory.Call();
            var callers = Enumerable.Range(0, 4).Select(t => new Thread(() =>
            {
                for (int i = 0; i < 20; i++)
                {
                    try
                    {
                        if (fn.Call<long, long>(i) != i + 1) Interlocked.Increment(ref wrong);
                        else Interlocked.Increment(ref ok);
                    }
                    catch (ObjectDisposedException) { Interlocked.Increment(ref disposedSeen); return; }
                }
            })).ToArray();
            foreach (var t in callers) t.Start();
            Thread.SpinWait(round * 50);
            fn.Dispose();
            foreach (var t in callers) if (!t.Join(10_000)) Outcome.Hang("caller");
        }
        Outcome.Report("wrong", wrong);
        Outcome.Report("ok_calls", ok);
        Outcome.Report("disposed_seen", disposedSeen);
    }
}
