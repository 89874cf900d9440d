using System.Diagnostics;
using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>Marks a static method as an attack the child process can run by this name. It returns
/// void, int (the exit code) or Task; it prints <c>key=value</c> lines the test reads.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class AttackAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

/// <summary>What attacks share: reporting outcomes, bounding waits, measuring leaks.</summary>
internal static class Outcome
{
    internal static void Report(string key, object? value) => Console.WriteLine($"{key}={value}");

    /// <summary>Runs <paramref name="action"/> and reports <c>name=ok</c> or <c>name=ExceptionType: message</c>
    /// (the innermost type for aggregates), never letting the exception escape.</summary>
    internal static void Try(string name, Action action)
    {
        try
        {
            action();
            Report(name, "ok");
        }
        catch (Exception e)
        {
            Report(name, Describe(e));
        }
    }

    internal static async Task TryAsync(string name, Func<Task> action, int timeoutMs = 10_000)
    {
        try
        {
            var task = action();
            if (await Task.WhenAny(task, Task.Delay(timeoutMs)) != task)
            {
                Report(name, "hang");
                return;
            }
            await task;
            Report(name, "ok");
        }
        catch (Exception e)
        {
            Report(name, Describe(e));
        }
    }

    internal static string Describe(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        var message = e.Message.ReplaceLineEndings(" ");
        if (message.Length > 300) message = message[..300];
        return $"{e.GetType().Name}: {message}";
    }

    /// <summary>Waits for <paramref name="task"/> without blocking forever: reports a hang and
    /// ends the process with status 4 when it does not complete in time.</summary>
    internal static T Within<T>(Task<T> task, int timeoutMs, string what)
    {
        if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(timeoutMs)) Hang(what);
        return task.GetAwaiter().GetResult();
    }

    internal static void Within(Task task, int timeoutMs, string what)
    {
        if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(timeoutMs)) Hang(what);
        task.GetAwaiter().GetResult();
    }

    internal static void Hang(string what)
    {
        Report("hang", what);
        Console.Out.Flush();
        Environment.Exit(4);
    }

    /// <summary>
    /// Runs <paramref name="operation"/> <paramref name="warmup"/> times, then <paramref name="count"/>
    /// more, and reports the growth per operation over the second window: process RSS (bytes),
    /// managed heap (bytes), Python's <c>len(gc.get_objects())</c> (objects), and native memory
    /// (bytes: RSS less the memory the .NET GC has committed, so that the managed heap growing
    /// its budget is not mistaken for a native leak), and Python's <c>sys.getallocatedblocks()</c>
    /// (blocks: catches leaked objects the cyclic GC does not track, such as ints and strings).
    /// Call with the GIL not held.
    /// </summary>
    internal static LeakFigures MeasureLeak(string name, Action operation, int warmup, int count)
    {
        for (int i = 0; i < warmup; i++) operation();
        var before = Sample();
        for (int i = 0; i < count; i++) operation();
        var after = Sample();
        var figures = new LeakFigures(
            (double)(after.Rss - before.Rss) / count,
            (double)(after.Heap - before.Heap) / count,
            (double)(after.Objects - before.Objects) / count,
            (double)(after.Rss - after.Committed - (before.Rss - before.Committed)) / count,
            (double)(after.Blocks - before.Blocks) / count);
        Report($"{name}.rss_per_op", figures.RssPerOp.ToString("F1"));
        Report($"{name}.heap_per_op", figures.HeapPerOp.ToString("F1"));
        Report($"{name}.objects_per_op", figures.ObjectsPerOp.ToString("F3"));
        Report($"{name}.native_per_op", figures.NativePerOp.ToString("F1"));
        Report($"{name}.blocks_per_op", figures.BlocksPerOp.ToString("F3"));
        return figures;
    }

    private static (long Rss, long Heap, long Objects, long Committed, long Blocks) Sample()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        long objects, blocks;
        using (Gil.Acquire())
        {
            using var gc = Py.Import("gc");
            using (gc.CallMethod("collect")) { }
            using var all = gc.CallMethod("get_objects");
            objects = all.Length;
            using var sys = Py.Import("sys");
            using var allocated = sys.CallMethod("getallocatedblocks");
            blocks = allocated.As<long>();
        }
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        long heap = GC.GetTotalMemory(forceFullCollection: true);
        return (self.WorkingSet64, heap, objects, GC.GetGCMemoryInfo(GCKind.Any).TotalCommittedBytes, blocks);
    }

    /// <summary>A Python function defined from source (module-level code in a fresh namespace).</summary>
    internal static PyObject Define(string source, string name)
    {
        using var globals = Py.Run(source);
        return globals[name];
    }

    /// <summary>The event loop thread most attacks run against, started with a bounded wait.</summary>
    internal static EventLoopThread StartLoopThread() => new();
}

internal readonly record struct LeakFigures(double RssPerOp, double HeapPerOp, double ObjectsPerOp, double NativePerOp, double BlocksPerOp);
