// A child process for tests that need a process of their own: libpython is loaded and the
// interpreter initialized once per process, so discovery rules and finalization are observed here.
using AsyncioRaw;

try
{
    return args[0] switch
    {
        "which" => Which(),
        "use" => Use(args[1]),
        "use-after-refused" => UseAfterRefused(args[1], args[2]),
        "judge" => Judge(args[1..]),
        "misuse" => Misuse(),
        "finalize" => FinalizeWhileAlive(),
        "ctrl-c" => CtrlC(ignoreCancellation: false),
        "ctrl-c-stubborn" => CtrlC(ignoreCancellation: true),
        "run-main-ctrl-c" => RunMainCtrlC(),
        "run-main" => RunMain(args[1]),
        "running-loop-type" => RunningLoopType(args[1]),
        _ => throw new ArgumentException($"unknown probe '{args[0]}'"),
    };
}
catch (PythonLibraryException e)
{
    Console.WriteLine("LIBRARY-ERROR");
    Console.WriteLine(e.Message);
    return 3;
}

static int Which()
{
    PythonRuntime.Initialize(installSignalHandlers: false);
    using var asyncio = Py.Import("_asyncio"); // a C extension: needs libpython loaded RTLD_GLOBAL
    using var version = Py.Eval("'%d.%d' % __import__('sys').version_info[:2]");
    Console.WriteLine($"version={version.As<string>()}");
    Console.WriteLine($"path={PythonLibrary.LoadedPath}");
    Console.WriteLine($"rule={PythonLibrary.FoundBy}");
    return 0;
}

// Python owns the main thread; the test sends SIGINT once "ready" is printed.
static int CtrlC(bool ignoreCancellation)
{
    try
    {
        Asyncio.Run(async ct =>
        {
            Console.WriteLine("ready");
            try
            {
                await Task.Delay(Timeout.Infinite, ignoreCancellation ? CancellationToken.None : ct);
            }
            catch (OperationCanceledException)
            {
                await Task.Delay(50, CancellationToken.None); // cleanup that itself awaits
                Console.WriteLine("cleanup");
            }
        });
        Console.WriteLine("returned normally");
        return 0;
    }
    catch (PythonKeyboardInterruptException)
    {
        // What a Python program does on an uncaught KeyboardInterrupt: exit status 128 + SIGINT.
        Console.WriteLine("KeyboardInterrupt");
        return 130;
    }
}

// Asyncio.RunMain as a console program's Main uses it: no catch, its result is the exit status.
static int RunMainCtrlC() => Asyncio.RunMain(async ct =>
{
    Console.WriteLine("ready");
    try
    {
        await Task.Delay(Timeout.Infinite, ct);
    }
    catch (OperationCanceledException)
    {
        await Task.Delay(50, CancellationToken.None); // cleanup that itself awaits
        Console.WriteLine("cleanup");
        throw;
    }
});

// How the main ends: each case is what Python's interpreter turns into an exit status.
static int RunMain(string ending)
{
    PythonRuntime.Initialize(installSignalHandlers: false);
    using var code = Py.Run("""
        import asyncio, sys

        async def end(how):
            await asyncio.sleep(0)
            print('printed by python', flush=False)
            if how == 'exit-none':
                sys.exit()
            if how == 'exit-3':
                sys.exit(3)
            if how == 'exit-message':
                sys.exit('a message for stderr')
            if how == 'python-error':
                raise ValueError('boom from python')
        """, fileName: "run_main_probe.py");
    using var end = code["end"];
    if (ending == "return-7")
    {
        return Asyncio.RunMain(async ct =>
        {
            using var coroutine = end.Call("ok");
            using var r = await coroutine.AsTask(ct);
            return 7;
        });
    }
    return Asyncio.RunMain(async ct =>
    {
        using var coroutine = end.Call(ending);
        using var r = await coroutine.AsTask(ct);
        if (ending == "dotnet-error") throw new InvalidOperationException("boom from .NET");
    });
}

// The running loop's type as .NET sees it, with an optional event loop policy module (uvloop).
static int RunningLoopType(string policy)
{
    PythonRuntime.Initialize();
    if (policy != "default")
    {
        using var module = Py.Import(policy);
        using var asyncio = Py.Import("asyncio");
        using (asyncio.CallMethod("set_event_loop_policy", module.CallMethod("EventLoopPolicy"))) { }
    }
    var type = Asyncio.Run(async _ =>
    {
        using var asyncio = Py.Import("asyncio");
        using var sleep = asyncio.CallMethod("sleep", 0.01, "slept");
        using var slept = await PyAwaitable.ToTask(sleep);
        using var loop = asyncio.CallMethod("get_running_loop");
        using var type = loop.GetAttr("__class__");
        return $"{type.GetAttr("__module__")}.{type.GetAttr("__qualname__")} {slept}";
    });
    Console.WriteLine($"loop={type}");
    return 0;
}

static int Use(string path)
{
    PythonLibrary.Use(path);
    return Which();
}

// A library refused (too old, free-threaded) must leave nothing behind that a later choice trips
// over: the next PythonLibrary.Use is judged on its own.
static int UseAfterRefused(string refused, string good)
{
    PythonLibrary.Use(refused);
    try
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        Console.WriteLine("refused=no");
        return 1;
    }
    catch (PythonLibraryException e)
    {
        Console.WriteLine($"refused={e.Message.Split('\n')[0]}");
    }
    return Use(good);
}

// Whether each library would be accepted, judged without making any of them this process's.
static int Judge(string[] paths)
{
    foreach (var path in paths) Console.WriteLine($"judge:{path}={PythonLibrary.Judge(path)}");
    return 0;
}

static int Misuse()
{
    Expect<InvalidOperationException>("acquire-before-init", () => { using var g = Gil.Acquire(); });
    Expect<InvalidOperationException>("import-before-init", () => Py.Import("sys"));
    PythonRuntime.Initialize(installSignalHandlers: false);
    PythonRuntime.Initialize(installSignalHandlers: false); // idempotent
    Expect<InvalidOperationException>("allow-threads-without-gil", () => { using var r = Gil.AllowThreads(); });
    Expect<InvalidOperationException>("shutdown-holding-gil", () =>
    {
        using var g = Gil.Acquire();
        PythonRuntime.Shutdown();
    });
    Expect<InvalidOperationException>("shutdown-other-thread", () =>
    {
        Exception? error = null;
        var t = new Thread(() => { try { PythonRuntime.Shutdown(); } catch (Exception e) { error = e; } });
        t.Start();
        t.Join();
        if (error != null) throw error;
    });
    PythonRuntime.Shutdown();
    Expect<InvalidOperationException>("acquire-after-finalize", () => { using var g = Gil.Acquire(); });
    Expect<InvalidOperationException>("reinitialize", () => PythonRuntime.Initialize());
    Console.WriteLine("done");
    return 0;
}

static void Expect<T>(string name, Action action) where T : Exception
{
    try
    {
        action();
        Console.WriteLine($"{name}: no exception");
    }
    catch (T e)
    {
        Console.WriteLine($"{name}: {typeof(T).Name}: {e.Message}");
    }
}

// Handles alive on other threads while the interpreter is finalized: those threads keep using
// and dropping them; nothing may crash, and every use after finalization is a clear exception.
static int FinalizeWhileAlive()
{
    PythonRuntime.Initialize(installSignalHandlers: false);
    using var globals = Py.Run("def f(x):\n    return [x] * 3\n");
    var f = globals["f"];
    var stop = new ManualResetEventSlim();
    int afterFinalizeErrors = 0, calls = 0;
    var threads = Enumerable.Range(0, 4).Select(i => new Thread(() =>
    {
        var mine = new List<PyObject>();
        while (!stop.IsSet)
        {
            try
            {
                mine.Add(f.Call(i));
                if (mine.Count > 100) { foreach (var o in mine) o.Dispose(); mine.Clear(); }
                Interlocked.Increment(ref calls);
            }
            catch (InvalidOperationException)
            {
                Interlocked.Increment(ref afterFinalizeErrors);
                Thread.Sleep(1);
            }
        }
        // Dispose after finalization: must be a silent no-op. Leave half to the finalizer thread.
        for (int k = 0; k < mine.Count; k += 2) mine[k].Dispose();
    })).ToList();
    threads.ForEach(t => t.Start());
    while (Volatile.Read(ref calls) < 2000) Thread.Sleep(1);
    PythonRuntime.Shutdown(TimeSpan.FromSeconds(30));
    Console.WriteLine($"finalized={!PythonRuntime.IsInitialized}");
    Thread.Sleep(50);
    stop.Set();
    threads.ForEach(t => t.Join());
    f.Dispose();
    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();
    Console.WriteLine($"calls-before={calls > 0} errors-after={afterFinalizeErrors > 0}");
    Console.WriteLine($"tostring-after={f}");
    Console.WriteLine("done");
    return 0;
}
