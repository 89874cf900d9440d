using System.Diagnostics;
using AsyncioRaw;

namespace AsyncioRaw.Bench;

/// <summary>T: a .NET thread calls loop.call_soon_threadsafe with a callback that releases it.</summary>
internal static class RoundTrip
{
    internal static (double, long) Measure(int n)
    {
        using var host = new EventLoopThread("round trip");
        using var loop = host.Loop.Loop;
        using var signal = new SemaphoreSlim(0);
        using var release = PyFunction.Create("release", _ => { signal.Release(); return null; });
        using var callSoon = loop.GetAttr("call_soon_threadsafe");
        return Task.Run(() =>
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < n; i++)
            {
                using (Gil.Acquire()) callSoon.Call<PyObject, PyObject>(release).Dispose();
                signal.Wait();
            }
            return (sw.Elapsed.TotalSeconds, (long)n);
        }).GetAwaiter().GetResult();
    }
}
