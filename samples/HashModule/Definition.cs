using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using AsyncioRaw;
using AsyncioRaw.Module;

namespace HashModule;

/// <summary>The hashmod module: hashing and timers, awaited from Python's own event loop.</summary>
public static class Definition
{
    private const int Chunk = 1 << 20;

    // What became of each watch(tag, ms) and ticks(..., tag): lets Python observe the .NET token.
    private static readonly ConcurrentDictionary<string, string> s_outcomes = new();

    public static void Define(PyModuleBuilder m)
    {
        // For the tests of a failing import (no managed exception may escape PyInit): the two
        // places a definition can fail, while it is written (PyInit) and while the module is
        // filled (Py_mod_exec).
        switch (Environment.GetEnvironmentVariable("HASHMOD_TEST_FAIL_IMPORT"))
        {
            case "define": throw new InvalidOperationException("the definition failed on purpose");
            case "exec": m.Function<long, long>("bad", x => x).WithSignature("(*args)"); break;
        }

        m.Doc = "Hashing and timers implemented in C# (AsyncioRaw, NativeAOT).";
        m.Constant("CHUNK_SIZE", Chunk);
        m.Constant("RUNTIME", System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription);

        m.Function("python_library", () => $"{PythonLibrary.LoadedPath} ({PythonLibrary.FoundBy}), Python {PythonLibrary.Version}",
            "python_library() -> where the module found Python's C API: '(process)' when it took the importing process's symbols");

        m.Function<long, long>("add1", x => x + 1, "add1(x) -> x + 1");
        m.Function<PyObject, PyObject>("identity", x => x,
            "identity(x) -> x, through .NET and back (the .NET reference is released on return)");
        m.Function<string, string, string>("concat", (a, b) => a + b, "concat(a, b='!') -> a + b")
            .WithSignature("(a, b='!')");

        m.Function<byte[], string>("sha256_sync", data =>
        {
            // Hashing touches no Python object: let other Python threads run meanwhile.
            using (Gil.AllowThreads())
                return Convert.ToHexStringLower(SHA256.HashData(data));
        }, "sha256_sync(data: bytes) -> hex digest; releases the GIL while it hashes");

        m.AsyncFunction<byte[], string>("sha256", Sha256Async,
            "await sha256(data: bytes) -> hex digest, hashed off the event loop in 1 MiB chunks");
        m.AsyncFunction<string, long, string>("sha256_file", Sha256FileAsync,
            "await sha256_file(path, *, chunk_size=CHUNK_SIZE) -> hex digest, read asynchronously")
            .WithSignature($"(path, *, chunk_size={Chunk})");

        m.AsyncFunction<long, long>("sleep_ms", async (ms, ct) =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(ms), ct);
            return ms;
        }, "await sleep_ms(n) -> n, after n milliseconds (Task.Delay)");

        m.AsyncFunction<string, long>("watch", async (tag, ms, ct) =>
        {
            s_outcomes[tag] = "running";
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(ms), ct);
                s_outcomes[tag] = "completed";
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                s_outcomes[tag] = "cancelled";
                throw;
            }
        }, "await watch(tag, ms): sleeps; outcome(tag) then tells whether its token was cancelled");
        m.Function<string, string?>("outcome", tag => s_outcomes.TryGetValue(tag, out var o) ? o : null,
            "outcome(tag) -> 'running', 'completed', 'cancelled' or None");

        m.AsyncGenerator<long, long, string, long>("ticks", (n, ms, tag) => Ticks(n, ms, tag),
            "async for i in ticks(n, ms, tag): yields 0..n-1, one every ms milliseconds");

        m.AsyncFunction<string>("fail", async (message, ct) =>
        {
            await Task.Yield();
            throw new InvalidOperationException(message);
        }, "await fail(message): raises a .NET InvalidOperationException after one await");

        m.AsyncFunction("give_up", async ct =>
        {
            await Task.Yield();
            throw new OperationCanceledException("the .NET side gave up on its own");
        }, "await give_up(): .NET cancels itself (nobody in Python asked)");

        m.AsyncFunction<PyObject, PyObject, List<object?>>("map_async", MapAsync,
            "await map_async(fn, xs) -> [await fn(x) for x in xs], awaited one by one from .NET");

        m.AsyncFunction<PyObject, long, long>("call_from_pool", (fn, x, ct) => Task.Run(() =>
        {
            // A thread-pool thread that never saw Python takes the GIL for the call.
            using (fn)
                return fn.Call<long, long>(x);
        }, ct), "await call_from_pool(fn, x) -> fn(x), called from a .NET thread-pool thread");

        m.Function<long, bool>("background", ms =>
        {
            // Work Python does not wait for: a thread-pool task that needs Python again later. If
            // Python is exiting by then, the library refuses it (InvalidOperationException).
            _ = Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromMilliseconds(ms));
                try
                {
                    using var value = PyConvert.ToPython(ms);
                }
                catch (InvalidOperationException) { } // Python is finalizing
            });
            return true;
        }, "background(ms): starts .NET work that takes the GIL after ms milliseconds; returns at once");

        m.Function<PyObject, long, long>("call_forever", (fn, threads) =>
        {
            // Thread-pool threads that keep calling into Python, for the tests of an exit that
            // happens meanwhile: they stop when the library refuses them (Python is finalizing) or
            // when fn raises.
            for (long i = 0; i < threads; i++)
            {
                _ = Task.Run(() =>
                {
                    try
                    {
                        while (true)
                            using (fn.Call()) { }
                    }
                    catch (InvalidOperationException) { }
                    catch (PythonException) { }
                });
            }
            return threads;
        }, "call_forever(fn, threads): starts threads .NET thread-pool threads calling fn() until Python exits or fn raises");
    }

    private static async Task<string> Sha256Async(byte[] data, CancellationToken ct)
    {
        if (data.Length <= Chunk) return Convert.ToHexStringLower(SHA256.HashData(data));
        // Off the loop thread, so the loop keeps running; cancellation is checked between chunks.
        return await Task.Run(() =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            for (int offset = 0; offset < data.Length; offset += Chunk)
            {
                ct.ThrowIfCancellationRequested();
                hash.AppendData(data, offset, Math.Min(Chunk, data.Length - offset));
            }
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }, ct);
    }

    private static async Task<string> Sha256FileAsync(string path, long chunkSize, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(chunkSize, 64L << 20);
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[chunkSize];
        int read;
        while ((read = await file.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            hash.AppendData(buffer, 0, read);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async IAsyncEnumerable<long> Ticks(long n, long ms, string tag, [EnumeratorCancellation] CancellationToken ct = default)
    {
        s_outcomes[tag] = "running";
        bool finished = false;
        try
        {
            for (long i = 0; i < n; i++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(ms), ct);
                yield return i;
            }
            finished = true;
        }
        finally
        {
            s_outcomes[tag] = finished ? "completed" : ct.IsCancellationRequested ? "cancelled" : "stopped";
        }
    }

    private static async Task<List<object?>> MapAsync(PyObject fn, PyObject xs, CancellationToken ct)
    {
        var results = new List<object?>();
        foreach (var x in xs.Iterate())
        {
            using (x)
            using (var awaitable = fn.Call(x))
            using (var result = await PyAwaitable.ToTask(awaitable, ct))
                results.Add(result.ToClr());
        }
        return results;
    }
}
