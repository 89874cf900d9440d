namespace AsyncioRaw;

/// <summary>
/// What flows with .NET async code that belongs to a Python event loop, the way pyo3's TaskLocals
/// flow with Rust futures: the loop, and the contextvars context of the Python code that called
/// into .NET. Python awaitables turned into Tasks run in that context, and so do synchronous
/// Python calls made from continuations on the loop.
/// </summary>
public sealed class TaskLocals
{
    private static readonly AsyncLocal<TaskLocals?> s_current = new(OnChanged);

    // The Python context this thread entered for the current task locals (at most one: the old
    // one is always exited before a new one is entered).
    [ThreadStatic] private static PyObject? t_entered;

    /// <summary>
    /// .NET switches ExecutionContexts whenever it runs a continuation, and this is told of every
    /// switch that changes the task locals. On the loop thread, holding the GIL, the Python context
    /// follows: synchronous Python calls made by that .NET code see the caller's context variables,
    /// wherever the continuation was queued from. Only while a loop's drain runs .NET continuations
    /// directly (<see cref="Callbacks.FollowExecutionContext"/>): there the Python context stack has
    /// nothing of ours or of a Python task above the drain's own context, so entering and exiting
    /// stay balanced. Must never throw (it runs inside the switch).
    /// </summary>
    private static void OnChanged(AsyncLocalValueChangedArgs<TaskLocals?> args)
    {
        try
        {
            if (!Callbacks.FollowExecutionContext || !Gil.HeldByUs || !PythonRuntime.IsInitialized) return;
            var entered = t_entered;
            var next = args.CurrentValue;
            if (entered != null && ReferenceEquals(next?.ContextIfCaptured, entered)) return;
            if (entered != null)
            {
                t_entered = null;
                if (!entered.IsDisposed) PyContextApi.Exit(PyBorrowed.Of(entered));
            }
            if (next?.ContextIfCaptured is { IsDisposed: false } context && next.Loop.IsOnLoopThread)
            {
                if (PyContextApi.TryEnter(PyBorrowed.Of(context))) t_entered = context;
                // else: already entered further down, so it is current anyway
            }
        }
        catch (Exception e)
        {
            CallbackFailure.Report("switching the Python context with the .NET execution context", e);
        }
    }

    /// <summary>True when <paramref name="context"/> is the context this thread entered for its task locals.</summary>
    internal static bool IsEntered(PyObject context) => ReferenceEquals(t_entered, context);

    private PyObject? _context;
    private bool _sealed;

    internal TaskLocals(EventLoop loop, PyObject? context)
    {
        Loop = loop;
        _context = context;
        _sealed = true;
    }

    /// <summary>Task locals whose context is copied only if asked for while the caller's Python
    /// context is still the current one (see <see cref="Seal"/>): a .NET function that completes
    /// synchronously never pays for the copy.</summary>
    internal TaskLocals(EventLoop loop) => Loop = loop;

    /// <summary>The event loop the .NET code of this task runs on and hands Python work
    /// to.</summary>
    public EventLoop Loop { get; }

    /// <summary>A copy of the caller's <c>contextvars.Context</c>, or null for the loop's default.</summary>
    public PyObject? Context
    {
        get
        {
            if (_context is null && !_sealed && Gil.HeldByUs)
                _context = PyContextApi.CopyCurrent().MoveToObject();
            return _context;
        }
    }

    /// <summary>The context if it was already copied (never copies).</summary>
    internal PyObject? ContextIfCaptured => _context;

    /// <summary>From now on the caller's context is no longer current: copy it now if the .NET
    /// work goes on, or never.</summary>
    internal void Seal(bool captureNow)
    {
        if (captureNow) _ = Context;
        _sealed = true;
    }

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

    /// <summary>Restores the task locals that were current before <see cref="Enter"/> when
    /// disposed.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly TaskLocals? _previous;
        internal Scope(TaskLocals? previous) => _previous = previous;
        /// <summary>Makes the previous task locals current again.</summary>
        public void Dispose()
        {
            if (!ReferenceEquals(s_current.Value, _previous)) s_current.Value = _previous;
        }
    }
}
