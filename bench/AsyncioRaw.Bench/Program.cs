// The benchmark scenarios of shared/bench/SCENARIOS.md, in one process against one interpreter.
// Usage: dotnet run -c Release --project bench/AsyncioRaw.Bench [-- --quick]
using System.Diagnostics;
using AsyncioRaw;
using AsyncioRaw.Bench;

bool quick = args.Contains("--quick");
int scale = quick ? 10 : 1;
int reps = quick ? 3 : 5;
PythonRuntime.Initialize();
BareInterop.Register();
using var g = Py.Run(ScenarioCode.Source, fileName: "scenarios.py");
using var add1 = g["add1"];
using var sleep0 = g["sleep0"];
using var sleep1ms = g["sleep1ms"];
using var add1Sync = g["add1_sync"];
using var ready = PyFunction.CreateAsync<long, long>("dotnet_ready", x => Task.FromResult(x));
if (args.Length >= 3 && args[0] == "--one")
{
    // One scenario run n times, for instruction counts: run under valgrind --tool=callgrind with two
    // values of n; the difference of the totals divided by the difference of n is the cost per op.
    int count = int.Parse(args[2]);
    var watch = Stopwatch.StartNew();
    long got = args[1] switch
    {
        "S1" => Asyncio.Run(async _ => { long s = 0; for (int i = 0; i < count; i++) { using var c = add1.Call<long, PyObject>(i); s += await PyAwaitable.Of<long>(c); } return s; }),
        "S2" => Asyncio.Run(async _ => { long s = 0; for (int i = 0; i < count; i++) { using var c = sleep0.Call<long, PyObject>(i); s += await PyAwaitable.Of<long>(c); } return s; }),
        "S1task" => Asyncio.Run(async _ => { long s = 0; for (int i = 0; i < count; i++) { using var c = add1.Call<long, PyObject>(i); s += await PyAwaitable.ToTask<long>(c); } return s; }),
        "S2task" => Asyncio.Run(async _ => { long s = 0; for (int i = 0; i < count; i++) { using var c = sleep0.Call<long, PyObject>(i); s += await PyAwaitable.ToTask<long>(c); } return s; }),
        "PP" => PingPong(count),
        "S4" => PyTimedSum("s4", ready, count),
        "P1" => PyTimedSum("floor_p1", count),
        "F2" => PyTimedSum("floor_f2", count),
        "F4fresh" => PyTimedSum("floor_f4fresh", count),
        _ => throw new ArgumentException("scenario: S1, S2, S4, P1, F2 or F4fresh"),
    };
    Console.WriteLine($"{args[1]} x{count}: {got} in {watch.Elapsed.TotalMilliseconds * 1e3 / count:F2} us/op (with start-up)");
    return 0;
}
// Nested ping-pong: .NET awaits py_level, which awaits dotnet_level, which awaits py_level... depth
// levels deep, n times; the sum counts the levels.
long PingPong(int n, int depth = 50) => Asyncio.Run(async _ =>
{
    using var pyLevel = g["py_level"];
    PyObject? dotnetLevel = null;
    dotnetLevel = PyFunction.CreateAsync<long, long>("dotnet_level", async d =>
    {
        if (d == 0) return 0;
        using var c = pyLevel.Call<PyObject, long, PyObject>(dotnetLevel!, d - 1);
        return await PyAwaitable.Of<long>(c) + 1;
    });
    long s = 0;
    for (int i = 0; i < n; i++) { using var c = pyLevel.Call<PyObject, long, PyObject>(dotnetLevel, depth); s += await PyAwaitable.Of<long>(c); }
    dotnetLevel.Dispose();
    return s;
});
long PyTimedSum(string function, params object?[] args) => PyTimedRun(function, args).Sum;
(double Seconds, long Sum) PyTimedRun(string function, object?[] args) => Asyncio.Run(async _ =>
{
    using var f = g[function];
    using var result = await PyAwaitable.ToTask(f.Call(args));
    var tuple = (object?[])result.ToClr()!;
    return ((double)tuple[0]!, tuple[1] is long l ? l : (long)(System.Numerics.BigInteger)tuple[1]!);
});
var rows = new List<Row>();
var failures = new List<string>();
Console.WriteLine($"AsyncioRaw benchmark{(quick ? " (quick)" : "")}: Python {PythonLibrary.Version} ({PythonLibrary.LoadedPath}), .NET {Environment.Version}, {Environment.ProcessorCount} cores");

static long Sum(long n, long offset) => n * (n - 1) / 2 + offset * n;

// Median of reps after one warm-up; each run returns (elapsed seconds, checked result).
double Median(string name, long expected, Func<(double Seconds, long Sum)> run)
{
    var times = new List<double>();
    for (int r = 0; r <= reps; r++)
    {
        var (seconds, sum) = run();
        if (sum != expected)
        {
            failures.Add($"{name}: sum {sum}, expected {expected}");
            return double.NaN;
        }
        if (r > 0) times.Add(seconds);
    }
    times.Sort();
    return times[times.Count / 2];
}

(double, long) PyTimed(string function, params object?[] args) => PyTimedRun(function, args);

void Add(string id, string where, long n, double seconds, double floorSeconds, string floorName, double limitRatio, long allocated = -1, bool totalMs = false)
{
    rows.Add(new Row(id, where, n, totalMs ? seconds * 1e3 : seconds / n * 1e6, totalMs ? "ms" : "us/op",
        floorSeconds / (totalMs ? 1 : n) * (totalMs ? 1e3 : 1e6), floorName, seconds / floorSeconds, limitRatio, allocated < 0 ? null : (double)allocated / n));
}

// ---- Floors ----
int n1 = 20_000 / scale, n3 = 10_000 / scale, n6 = 1_000_000 / scale, n6g = 100_000 / scale;
double f1 = Median("F1", Sum(n1, 1), () => PyTimed("floor_f1", n1));
double f2 = Median("F2", Sum(n1, 0), () => PyTimed("floor_f2", n1));
double f3 = Median("F3", Sum(n3, 0), () => PyTimed("floor_f3", n3));
double f4 = Median("F4", n1, () => PyTimed("floor_f4", n1));
double f4Fresh = Median("F4fresh", Sum(n1, 0), () => PyTimed("floor_f4fresh", n1));
double p1 = Median("P1", Sum(n1, 1), () => PyTimed("floor_p1", n1));
double t = Median("T", n1, () => RoundTrip.Measure(n1));

// ---- Loop thread ----
// .NET on the loop thread awaits function(i) n times, directly (stepped inside the main's task) or
// through a stored Task (ToTask: a Task per await); allocation measured on that one thread.
(double, long) AwaitOnLoop(PyObject function, int n, out long allocated, bool stored = false)
{
    long bytes = 0;
    var result = Asyncio.Run(async _ =>
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew(); long s = 0;
        if (stored)
            for (int i = 0; i < n; i++) { using var c = function.Call<long, PyObject>(i); s += await PyAwaitable.ToTask<long>(c); }
        else
            for (int i = 0; i < n; i++) { using var c = function.Call<long, PyObject>(i); s += await PyAwaitable.Of<long>(c); }
        bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        return (sw.Elapsed.TotalSeconds, s);
    });
    allocated = bytes;
    return result;
}
long allocS1 = 0, allocS2 = 0;
double s1Loop = Median("S1 loop", Sum(n1, 1), () => AwaitOnLoop(add1, n1, out allocS1));
double s2Loop = Median("S2 loop", Sum(n1, 0), () => AwaitOnLoop(sleep0, n1, out allocS2));
long allocS1Task = 0, allocS2Task = 0;
double s1Task = Median("S1 loop ToTask", Sum(n1, 1), () => AwaitOnLoop(add1, n1, out allocS1Task, stored: true));
double s2Task = Median("S2 loop ToTask", Sum(n1, 0), () => AwaitOnLoop(sleep0, n1, out allocS2Task, stored: true));
int nPing = 1_000 / scale, depth = 50;
double ping = Median("ping-pong", (long)nPing * depth, () =>
{
    var sw = Stopwatch.StartNew();
    long levels = PingPong(nPing, depth);
    return (sw.Elapsed.TotalSeconds, levels);
});
double s3Loop = Median("S3 loop", Sum(n3, 0), () => Asyncio.Run(async _ =>
{
    var sw = Stopwatch.StartNew();
    var tasks = new Task<long>[n3];
    for (int i = 0; i < n3; i++) { using var c = sleep1ms.Call<long, PyObject>(i); tasks[i] = PyAwaitable.ToTask<long>(c); }
    var r = await Task.WhenAll(tasks);
    return (sw.Elapsed.TotalSeconds, r.Sum());
}));
using var delay1ms = PyFunction.CreateAsync<long, long>("dotnet_delay_1ms", async (long x, CancellationToken ct) => { await Task.Delay(1, ct); return x; });
long allocS4 = 0;
double s4 = Median("S4", Sum(n1, 0), () =>
{
    long before = GC.GetTotalAllocatedBytes(true);
    var r = PyTimed("s4", ready, n1);
    allocS4 = GC.GetTotalAllocatedBytes(true) - before;
    return r;
});
double s5 = Median("S5", Sum(n3, 0), () => PyTimed("s5", delay1ms, n3));

Add("S1", "loop thread", n1, s1Loop, p1, "P1", 5.0, allocS1);
Add("S2", "loop thread", n1, s2Loop, f2, "F2", 1.3, allocS2);
Add("S1", "loop thread, ToTask", n1, s1Task, f1, "F1", 1.5, allocS1Task);
Add("S2", "loop thread, ToTask", n1, s2Task, f2, "F2", 1.5, allocS2Task);
Add("PP", $"ping-pong depth {depth}, per level", (long)nPing * depth, ping, s1Loop * nPing * depth / n1, "S1", 1.0);
Add("S3", "loop thread", n3, s3Loop, f3, "F3", 1.3, totalMs: true);
Add("S4", "Python awaits", n1, s4, f4Fresh, "F4fresh", 1.5, allocS4);
Add("S5", "Python awaits", n3, s5, f3, "F3", 1.3, totalMs: true);

// ---- Pool threads, loop on its own thread ----
var cpu = new List<string>();
using (var host = new EventLoopThread())
{
    (double, long) OnPool(Func<Task<long>> body)
    {
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime; var sw = Stopwatch.StartNew();
        long s = Task.Run(body).GetAwaiter().GetResult();
        var wall = sw.Elapsed; proc.Refresh();
        cpu.Add($"{(proc.TotalProcessorTime - cpu0).TotalSeconds / wall.TotalSeconds:F2}");
        return (wall.TotalSeconds, s);
    }
    double s1Pool = Median("S1 pool", Sum(n1, 1), () => OnPool(async () => { long s = 0; for (int i = 0; i < n1; i++) s += await host.CallAsync<long, long>(add1, i); return s; }));
    var cpuS1 = cpu[^1];
    double s2Pool = Median("S2 pool", Sum(n1, 0), () => OnPool(async () => { long s = 0; for (int i = 0; i < n1; i++) s += await host.CallAsync<long, long>(sleep0, i); return s; }));
    var cpuS2 = cpu[^1];
    double s3Pool = Median("S3 pool", Sum(n3, 0), () => OnPool(async () => (await Task.WhenAll(Enumerable.Range(0, n3).Select(i => host.CallAsync<long, long>(sleep1ms, i)))).Sum()));
    var cpuS3 = cpu[^1];
    int per = n1 / 4;
    double s7 = Median("S7", 4 * Sum(per, 0), () => OnPool(async () => (await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
    {
        long s = 0;
        for (int i = 0; i < per; i++) s += await host.CallAsync<long, long>(sleep0, i);
        return s;
    })))).Sum()));
    var cpuS7 = cpu[^1];
    Add("S1", $"pool (cpu/wall {cpuS1})", n1, s1Pool, f1 + t, "F1+T", 1.3);
    Add("S2", $"pool (cpu/wall {cpuS2})", n1, s2Pool, f2 + t, "F2+T", 1.3);
    Add("S3", $"pool (cpu/wall {cpuS3})", n3, s3Pool, f3, "F3", 1.3, totalMs: true);
    Add("S7", $"4 pool threads (cpu/wall {cpuS7})", n1, s7, s2Pool, "S2 pool", 1.0);
}

// ---- S6: synchronous calls ----
double bareCall = Median("S6 bare", Sum(n6, 1), () => { using (Gil.Acquire()) return SyncCalls.Bare(add1Sync, n6); });
double ourCall = Median("S6 held", Sum(n6, 1), () => { using (Gil.Acquire()) return SyncCalls.Ours(add1Sync, n6); });
double ourPerCall = Median("S6 per call", Sum(n6g, 1), () => SyncCalls.Ours(add1Sync, n6g));
double bareGil = Median("GIL bare", n6g, () => SyncCalls.BareGilPair(n6g));
double ourGil = Median("GIL ours", n6g, () => SyncCalls.OurGilPair(n6g));
double ourGilPool = Median("GIL ours pool", n6g, () => Task.Run(() => SyncCalls.OurGilPair(n6g)).Result);
double bareGilPool = Median("GIL bare pool", n6g, () => Task.Run(() => SyncCalls.BareGilPair(n6g)).Result);
Add("S6", "call, GIL held", n6, ourCall, bareCall, "bare call", 1.5);
Add("S6", "call, GIL per call", n6g, ourPerCall, bareCall * n6g / n6 + bareGil, "bare call+pair", 1.5);
Add("S6", "GIL pair, main thread", n6g, ourGil, bareGil, "bare pair", 1.5);
Add("S6", "GIL pair, pool thread", n6g, ourGilPool, bareGilPool, "bare pair", 1.5);

// ---- Scaling ----
var scaling = new List<string>();
foreach (int n in quick ? new[] { 1_000, 10_000 } : new[] { 1_000, 10_000, 100_000 })
{
    double s3n = Median($"S3 x{n}", Sum(n, 0), () => Asyncio.Run(async _ =>
    {
        var sw = Stopwatch.StartNew();
        var tasks = new Task<long>[n];
        for (int i = 0; i < n; i++) { using var c = sleep1ms.Call<long, PyObject>(i); tasks[i] = PyAwaitable.ToTask<long>(c); }
        var r = await Task.WhenAll(tasks);
        return (sw.Elapsed.TotalSeconds, r.Sum());
    }));
    double s5n = Median($"S5 x{n}", Sum(n, 0), () => PyTimed("s5", delay1ms, n));
    double f3n = Median($"F3 x{n}", Sum(n, 0), () => PyTimed("floor_f3", n));
    GC.Collect();
    scaling.Add($"| {n,7:N0} | {s3n * 1e3,9:F1} | {s5n * 1e3,9:F1} | {f3n * 1e3,9:F1} | {s3n / n * 1e6,7:F2} | {s5n / n * 1e6,7:F2} | {GC.GetTotalMemory(false) / 1048576.0,6:F1} |");
}

Console.WriteLine();
Console.WriteLine($"T (bare cross-thread round trip): {t / n1 * 1e6:F2} us");
Console.WriteLine();
Console.WriteLine("| scenario | where | N | median | unit | floor | floor value | ratio | target | alloc B/op |");
Console.WriteLine("|---|---|---:|---:|---|---|---:|---:|---:|---:|");
foreach (var r in rows)
    Console.WriteLine($"| {r.Id} | {r.Where} | {r.N:N0} | {r.Median:F3} | {r.Unit} | {r.FloorName} | {r.FloorValue:F3} | {r.Ratio:F2} | <= {r.Target:F1} {(r.Ratio <= r.Target ? "ok" : "MISSED")} | {(r.AllocPerOp is { } a ? a.ToString("F0") : "")} |");
Console.WriteLine();
Console.WriteLine("Scaling (total ms; us per op; managed heap MB after):");
Console.WriteLine("| N | S3 ms | S5 ms | F3 ms | S3 us/op | S5 us/op | heap MB |");
Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
scaling.ForEach(Console.WriteLine);
if (failures.Count > 0)
{
    Console.WriteLine();
    failures.ForEach(f => Console.WriteLine("WRONG RESULT: " + f));
    return 1;
}
return 0;

internal sealed record Row(string Id, string Where, long N, double Median, string Unit, double FloorValue, string FloorName, double Ratio, double Target, double? AllocPerOp);
