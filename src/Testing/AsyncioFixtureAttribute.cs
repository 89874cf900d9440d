using System.Runtime.CompilerServices;
using AsyncioRaw;
using NUnit.Framework;
using NUnit.Framework.Interfaces;

namespace AsyncioRaw.Testing;

/// <summary>
/// The [AsyncioTest] methods of this fixture share one event loop, on a thread of its own, for
/// the life of the fixture instance (created at first use, disposed after the fixture's last
/// test). Use it when tests build on Python state the loop owns; it is disposed with a timeout,
/// cancelling whatever is still pending.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class AsyncioFixtureAttribute : NUnitAttribute, ITestAction
{
    /// <summary>Runs around the fixture (suite), not around each test.</summary>
    public ActionTargets Targets => ActionTargets.Suite;

    /// <summary>Nothing to do before the fixture: its loop is created when the first test needs
    /// it.</summary>
    public void BeforeTest(ITest test) { }

    /// <summary>Disposes the fixture's shared loop after its last test, cancelling what is still
    /// pending.</summary>
    public void AfterTest(ITest test)
    {
        if (test.Fixture is { } fixture) SharedLoops.Dispose(fixture);
    }
}

internal static class SharedLoops
{
    private static readonly ConditionalWeakTable<object, EventLoopThread> s_loops = new();

    internal static EventLoopThread For(object fixture) =>
        s_loops.GetValue(fixture, static f => new EventLoopThread($"asyncio loop of {f.GetType().Name}"));

    internal static void Dispose(object fixture)
    {
        if (s_loops.TryGetValue(fixture, out var loop))
        {
            s_loops.Remove(fixture);
            loop.Dispose();
        }
    }
}
