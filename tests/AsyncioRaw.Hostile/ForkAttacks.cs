using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>
/// Attacks with fork: a forked child of a .NET host has only the forking thread, so the CLR's
/// own threads (GC, finalizer, signal handling) do not exist there. Whatever the child does, the
/// parent must survive; a child calling .NET code gets a clear Python exception.
/// </summary>
internal static class ForkAttacks
{
    private const string Source = """
        import os, signal, sys, time, warnings
        warnings.simplefilter('ignore', DeprecationWarning)  # 3.12+: fork() of a multi-threaded process

        def _status(status):
            if os.WIFEXITED(status):
                return os.WEXITSTATUS(status)
            return -os.WTERMSIG(status)

        def fork_exit():
            pid = os.fork()
            if pid == 0:
                os._exit(3)
            return _status(os.waitpid(pid, 0)[1])

        def fork_killed():
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.write(w, b'x')
                time.sleep(30)
                os._exit(0)
            os.close(w)
            os.read(r, 1)  # the child is running
            os.close(r)
            os.kill(pid, signal.SIGTERM)
            return _status(os.waitpid(pid, 0)[1])

        def fork_call(fn):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    msg = f'called: {fn(1)}'
                except BaseException as e:
                    msg = f'{type(e).__name__}: {e}'
                os.write(w, msg.encode())
                os._exit(0)
            os.close(w)
            chunks = []
            while True:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(r)
            return b''.join(chunks).decode() + f' | exit={_status(os.waitpid(pid, 0)[1])}'

        def pool_map():
            import multiprocessing as mp
            with mp.get_context('fork').Pool(2) as pool:
                return sum(pool.map(abs, range(-50, 50)))
        """;

    [Attack("fork.exit_and_kill")]
    private static void ExitAndKill()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var globals = Py.Run(Source);
        using (var f = globals["fork_exit"]) Outcome.Report("child_exit", f.Call<long>());
        using (var f = globals["fork_killed"]) Outcome.Report("child_killed", f.Call<long>());
        Thread.Sleep(200); // a signal forwarded to the parent would end it here
        Outcome.Report("parent", "alive");
    }

    [Attack("fork.pool")]
    private static void Pool()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var globals = Py.Run(Source);
        using (var f = globals["pool_map"]) Outcome.Report("pool_sum", f.Call<long>());
        Thread.Sleep(200);
        Outcome.Report("parent", "alive");
    }

    [Attack("fork.child_calls_dotnet")]
    private static void ChildCallsDotnet()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var globals = Py.Run(Source);
        using var fn = PyFunction.Create<long, long>("dotnet_fn", x => x + 1);
        // The parent itself may call it, before and after.
        Outcome.Report("parent_call", fn.Call<long, long>(1));
        using (var f = globals["fork_call"]) Outcome.Report("child", f.Call<PyObject, string>(fn));
        Outcome.Report("parent_call_after", fn.Call<long, long>(2));
        Thread.Sleep(200);
        Outcome.Report("parent", "alive");
    }

    /// <summary>The same from the event loop thread (the usual place Python code runs).</summary>
    [Attack("fork.from_loop")]
    private static async Task FromLoop()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var globals = Py.Run(Source + """

            async def fork_in_loop(fn):
                return fork_call(fn) + ' ; ' + str(fork_killed())
            """);
        using var fn = PyFunction.Create<long, long>("dotnet_fn", x => x + 1);
        await using var loop = new EventLoopThread();
        using var f = globals["fork_in_loop"];
        var result = Outcome.Within(Task.Run(() => loop.CallAsync<PyObject, string>(f, fn)), 20_000, "fork in loop");
        Outcome.Report("child", result);
        Outcome.Report("parent", "alive");
    }
}
