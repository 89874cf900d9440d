using System.Reflection;
using System.Runtime.ExceptionServices;
using AsyncioRaw;
using NUnit.Framework;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;
using NUnit.Framework.Internal.Builders;
using NUnit.Framework.Internal.Commands;

namespace AsyncioRaw.Testing;

/// <summary>
/// Runs an NUnit test inside a Python event loop, created for the test and shut down properly
/// afterwards (the NUnit worker thread runs it, so parallel fixtures each have their own loop
/// thread). An <c>async Task</c> body runs on the loop with the task locals set; a synchronous body
/// runs off the loop thread (it may block) while the loop keeps running, and may take an
/// <see cref="EventLoop"/> parameter. A trailing <see cref="CancellationToken"/> parameter gets
/// NUnit's test token ([CancelAfter]) linked to the loop's, so it cancels the Python side too.
/// Methods marked <see cref="AsyncioSetUpAttribute"/>/<see cref="AsyncioTearDownAttribute"/> run in
/// the same loop around the body. The test fails, saying which, if a Python exception escapes (type,
/// message and traceback in the message), if Python tasks are left pending, or if an exception was
/// never retrieved. On its own it makes the method a test (like [Test]); with [TestCase] it runs
/// each case. Inside the loop, await with try/catch rather than Assert.ThrowsAsync, which blocks
/// the loop thread (the bridge detects that and throws instead of deadlocking).
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AsyncioTestAttribute : NUnitAttribute, IWrapTestMethod, ISimpleTestBuilder, IImplyFixture
{
    /// <summary>Run asyncio in debug mode (slow-callback and never-awaited checks).</summary>
    public bool Debug { get; set; }

    /// <summary>Fail when Python tasks are still pending after the body (default true).</summary>
    public bool FailOnPendingTasks { get; set; } = true;

    /// <summary>NUnit's hook: runs the test body (and its set-up and tear-down methods) inside an
    /// event loop.</summary>
    public TestCommand Wrap(TestCommand command) => new AsyncioTestCommand(command, this);

    /// <summary>Builds the test when no [Test]/[TestCase] does, with a placeholder for each
    /// EventLoop parameter (filled in when the test runs). A CancellationToken parameter is left to
    /// NUnit, which supplies [CancelAfter]'s token.</summary>
    public TestMethod BuildFrom(IMethodInfo method, NUnit.Framework.Internal.Test? suite)
    {
        var placeholders = method.GetParameters().Where(p => p.ParameterType == typeof(EventLoop)).Select(_ => (object?)null).ToArray();
        var parms = placeholders.Length == 0 ? null : new TestCaseParameters(placeholders);
        return new NUnitTestCaseBuilder().BuildTestMethod(method, suite, parms);
    }
}

/// <summary>An async (or sync) method of the fixture run in the test's loop before the body.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AsyncioSetUpAttribute : Attribute;

/// <summary>An async (or sync) method of the fixture run in the test's loop after the body, even when it failed.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AsyncioTearDownAttribute : Attribute;

internal sealed class AsyncioTestCommand(TestCommand inner, AsyncioTestAttribute options) : DelegatingTestCommand(inner)
{
    public override TestResult Execute(TestExecutionContext context)
    {
        try
        {
            var shared = context.TestObject is { } fixture && fixture.GetType().IsDefined(typeof(AsyncioFixtureAttribute), inherit: true)
                ? SharedLoops.For(fixture)
                : null;
            var problems = shared is null
                ? LoopRunner.Run(options, context.CancellationToken, (loop, ct) => RunBody(context, loop, ct))
                : LoopRunner.RunShared(shared, context.CancellationToken, (loop, ct) => RunBody(context, loop, ct));
            if (problems.Count > 0)
                context.CurrentResult.SetResult(ResultState.Failure, string.Join(Environment.NewLine, problems));
            else if (context.CurrentResult.ResultState == ResultState.Inconclusive && context.CurrentResult.AssertionResults.Count == 0)
                context.CurrentResult.SetResult(ResultState.Success);
        }
        catch (Exception e)
        {
            Record(context, e);
        }
        return context.CurrentResult;
    }

    private static void Record(TestExecutionContext context, Exception e)
    {
        while (e is TargetInvocationException { InnerException: { } inner }) e = inner;
        while (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        if (e is PythonException pe)
        {
            context.CurrentResult.SetResult(ResultState.Failure,
                $"Python {pe.PythonTypeModule}.{pe.PythonTypeName}: {pe.PythonMessage}{Environment.NewLine}{pe.PythonTraceback}", pe.StackTrace);
            return;
        }
        context.CurrentResult.RecordException(e);
    }

    private async Task RunBody(TestExecutionContext context, EventLoop loop, CancellationToken token)
    {
        var fixture = context.TestObject;
        var test = (TestMethod)context.CurrentTest;
        var method = test.Method.MethodInfo;
        var fixtureType = method.DeclaringType!;
        Exception? failure = null;
        try
        {
            foreach (var setUp in Marked<AsyncioSetUpAttribute>(fixtureType))
                await Invoke(setUp, fixture, [], loop, token);
            var result = await Invoke(method, fixture, test.Arguments, loop, token);
            if (ExpectedResult(test) is (true, var expected)) Assert.That(result, Is.EqualTo(expected));
        }
        catch (Exception e)
        {
            failure = e;
        }
        foreach (var tearDown in Marked<AsyncioTearDownAttribute>(fixtureType))
        {
            try { await Invoke(tearDown, fixture, [], loop, token); }
            catch (Exception e) { failure ??= e; }
        }
        if (failure != null) ExceptionDispatchInfo.Capture(failure).Throw();
    }

    // [TestCase(ExpectedResult = ...)]: NUnit keeps these internal to TestMethod.
    private static readonly PropertyInfo? s_hasExpected = typeof(TestMethod).GetProperty("HasExpectedResult", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
    private static readonly PropertyInfo? s_expected = typeof(TestMethod).GetProperty("ExpectedResult", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);

    private static (bool, object?) ExpectedResult(TestMethod test) =>
        s_hasExpected?.GetValue(test) is true ? (true, s_expected?.GetValue(test)) : (false, null);

    private static IEnumerable<MethodInfo> Marked<T>(Type type) where T : Attribute =>
        type.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .Where(m => m.IsDefined(typeof(T), inherit: true));

    /// <summary>Calls the method with its arguments plus any EventLoop/CancellationToken it asks for;
    /// an async one is awaited on the loop, a synchronous one runs on the thread pool.</summary>
    private static async Task<object?> Invoke(MethodInfo method, object? fixture, object?[] given, EventLoop loop, CancellationToken token)
    {
        var parameters = method.GetParameters();
        var args = new object?[parameters.Length];
        int next = 0;
        for (int i = 0; i < parameters.Length; i++)
        {
            var type = parameters[i].ParameterType;
            if (next < given.Length && !(given[next] is null && (type == typeof(EventLoop) || type == typeof(CancellationToken))) && (type != typeof(CancellationToken) || given[next] is CancellationToken))
                args[i] = given[next++];
            else if (type == typeof(EventLoop)) args[i] = loop;
            else if (type == typeof(CancellationToken)) args[i] = token;
            else throw new ArgumentException($"No value for parameter '{parameters[i].Name}' of {method.Name}.");
        }
        bool isAsync = typeof(Task).IsAssignableFrom(method.ReturnType) || method.ReturnType == typeof(ValueTask)
            || (method.ReturnType.IsGenericType && method.ReturnType.GetGenericTypeDefinition() == typeof(ValueTask<>));
        if (!isAsync)
            return await Task.Run(() => method.Invoke(fixture, args), CancellationToken.None).ConfigureAwait(true);
        object? returned = method.Invoke(fixture, args);
        switch (returned)
        {
            case Task task:
                await task;
                var resultProperty = task.GetType().GetProperty("Result");
                return task.GetType().IsGenericType && resultProperty?.PropertyType.Name != "VoidTaskResult" ? resultProperty?.GetValue(task) : null;
            case ValueTask valueTask:
                await valueTask;
                return null;
            default:
                // ValueTask<T>
                var asTask = (Task)returned!.GetType().GetMethod("AsTask")!.Invoke(returned, null)!;
                await asTask;
                return asTask.GetType().GetProperty("Result")!.GetValue(asTask);
        }
    }
}
