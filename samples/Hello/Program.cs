using AsyncioRaw;

PythonRuntime.Initialize();
Console.WriteLine($"Python {PythonLibrary.Version} from {PythonLibrary.LoadedPath} (found by {PythonLibrary.FoundBy})");

using var globals = Py.Run("""
    import asyncio, math

    def hypot(a, b):
        return math.sqrt(a * a + b * b)

    async def countdown(n):
        for i in range(n, 0, -1):
            await asyncio.sleep(0.01)
            yield i

    async def ask_dotnet(fetch):
        # Python awaiting .NET: fetch is a .NET async method.
        sizes = await asyncio.gather(*(fetch(word) for word in ['asyncio', 'and', '.NET']))
        return dict(zip(['asyncio', 'and', '.NET'], sizes))
    """);

// A plain call, no intermediate objects.
using var hypot = globals["hypot"];
Console.WriteLine($"hypot(3, 4) = {hypot.Call<double, double, double>(3, 4)}");

// A Python exception arrives with its type, message and traceback.
try { Py.Eval("1 / 0").Dispose(); }
catch (PythonException e) { Console.WriteLine($"caught {e.PythonTypeName}: {e.PythonMessage}"); }

// The console entry point: Python's event loop owns this thread until the .NET main finishes, and
// the result is the exit status a Python program would give (0; 130 after Ctrl-C, which cancels
// the main's token first; 1 with the traceback printed for an uncaught exception).
return Asyncio.RunMain(async cancellation =>
{
    var ticks = new List<long>();
    await foreach (var i in globals["countdown"].Call(3).AsAsyncEnumerable<long>(cancellation))
        ticks.Add(i);

    using var fetch = PyFunction.CreateAsync<string, long>("fetch", async (string word, CancellationToken ct) =>
    {
        await Task.Delay(10, ct); // .NET work, awaited by Python
        return word.Length;
    });
    using var askDotnet = globals["ask_dotnet"].Call(fetch);
    using var sizes = await askDotnet.AsTask(cancellation); // 'await pyObject' with cancellation
    Console.WriteLine($"countdown {string.Join(", ", ticks)}; sizes {sizes.Repr()}");
});
