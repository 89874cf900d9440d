namespace AsyncioRaw.Asyncio;

/// <summary>
/// What flows with .NET async code that belongs to a Python event loop, the way pyo3's TaskLocals
/// flow with Rust futures: the loop, and the contextvars context of the Python code that called
/// into .NET. Python awaitables turned into Tasks run in that context, and so do synchronous
/// Python calls made from continuations on the loop.
/// </summary>
public sealed class TaskLocals
{
    private static readonly AsyncLocal<TaskLocals?> s_current = new();

    public TaskLocals(EventLoop loop, PyObject? context)
    {
        Loop = loop;
        Context = context;
    }

    public EventLoop Loop { get; }

    /// <summary>A copy of the caller's <c>contextvars.Context</c>, or null for the loop's default.</summary>
    public PyObject? Context { get; }

    /// <summary>The task locals of the current .NET async flow, or null outside any loop.</summary>
    public static TaskLocals? Current => s_current.Value;

    /// <summary>The current task locals, or a clear error saying how to get some.</summary>
    public static TaskLocals Require() => s_current.Value ?? throw new InvalidOperationException(
        "No Python event loop is associated with this .NET async flow. Run the code inside Asyncio.Run(...) " +
        "or EventLoopThread.RunAsync(...), call it from a Python coroutine, use TaskLocals.Scope(...), " +
        "or pass the EventLoop explicitly.");

    /// <summary>Makes <paramref name="locals"/> current until the returned scope is disposed
    /// (pyo3's <c>scope</c>).</summary>
    public static Scope Enter(TaskLocals? locals)
    {
        var previous = s_current.Value;
        if (!ReferenceEquals(previous, locals)) s_current.Value = locals;
        return new Scope(previous);
    }

    public readonly struct Scope : IDisposable
    {
        private readonly TaskLocals? _previous;
        internal Scope(TaskLocals? previous) => _previous = previous;
        public void Dispose()
        {
            if (!ReferenceEquals(s_current.Value, _previous)) s_current.Value = _previous;
        }
    }
}
