using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>Attacks that prove the harness itself: one clean run and one of each bad ending.</summary>
internal static class Smoke
{
    [Attack("smoke.clean")]
    private static async Task Clean()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        await using var loop = new EventLoopThread();
        using var add1 = Outcome.Define("async def add1(x):\n    return x + 1\n", "add1");
        Outcome.Report("result", await loop.CallAsync<long, long>(add1, 41));
    }

    [Attack("smoke.abort")]
    private static void Abort() => Environment.FailFast("the harness must see this as a crash");

    [Attack("smoke.hang")]
    private static void HangForever() => Thread.Sleep(Timeout.Infinite);
}
