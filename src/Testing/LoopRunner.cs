using AsyncioRaw;

namespace AsyncioRaw.Testing;

/// <summary>A fresh loop for one test: run the body, check what Python left behind, shut down.</summary>
internal static class LoopRunner
{
    private const string Helpers = """
        import asyncio, gc

        def prepare(loop, debug):
            problems = []
            def handler(loop, context):
                exc = context.get('exception')
                problems.append(context.get('message', 'error') + (': ' + repr(exc) if exc is not None else ''))
            loop.set_exception_handler(handler)
            loop.set_debug(debug)
            return problems

        def pending(loop):
            return [repr(t) for t in asyncio.all_tasks(loop) if not t.done()]

        def collect():
            gc.collect()
        """;

    private static readonly PythonLazy s_helpers = new(() => Py.Run(Helpers, fileName: "<asyncioraw testing>"));

    /// <summary>Runs <paramref name="body"/> on a fixture's shared loop thread and waits for it here
    /// (this thread is not the loop's). Tasks may outlive a test on a shared loop by design, so
    /// only exceptions are reported.</summary>
    internal static List<string> RunShared(EventLoopThread shared, CancellationToken testToken, Func<EventLoop, CancellationToken, Task> body)
    {
        shared.RunAsync(async ct =>
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, testToken);
            await body(shared.Loop, linked.Token);
            return 0;
        }).GetAwaiter().GetResult();
        return [];
    }

    /// <summary>Runs <paramref name="body"/> in a new loop on this thread. Returns the problems
    /// Python left behind (pending tasks, unretrieved exceptions); rethrows the body's exception.</summary>
    internal static List<string> Run(AsyncioTestAttribute options, CancellationToken testToken, Func<EventLoop, CancellationToken, Task> body)
    {
        PythonRuntime.Initialize();
        var problems = new List<string>();
        using var asyncio = Py.Import("asyncio");
        using var loop = asyncio.CallMethod("new_event_loop");
        using (asyncio.CallMethod("set_event_loop", loop)) { }
        using var prepare = s_helpers.Value["prepare"];
        using var reported = prepare.Call(loop, options.Debug);
        Exception? failure = null;
        try
        {
            Asyncio.RunUntilComplete<object?>(loop, async mainToken =>
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(mainToken, testToken);
                await body(TaskLocals.Require().Loop, linked.Token);
                return null;
            });
        }
        catch (Exception e)
        {
            failure = e;
        }
        if (options.FailOnPendingTasks && failure is null)
        {
            using var pendingFn = s_helpers.Value["pending"];
            using var pending = pendingFn.Call(loop);
            foreach (var task in (List<object?>)pending.ToClr()!)
                problems.Add($"Python task left pending: {task}");
        }
        Asyncio.ShutDown(loop);
        using (var collect = s_helpers.Value["collect"])
        using (collect.Call()) { } // unretrieved task exceptions are reported when collected
        foreach (var message in (List<object?>)reported.ToClr()!)
            problems.Add($"Python reported: {message}");
        using (loop.CallMethod("close")) { }
        using (asyncio.CallMethod("set_event_loop", Py.None)) { }
        if (failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        return problems;
    }
}
