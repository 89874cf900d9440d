namespace AsyncioRaw;

/// <summary>
/// A Python object made on first use and kept until the interpreter is finalized. The factory runs
/// with the GIL and without any managed lock: it runs Python code (imports, module source), which
/// may hand the GIL to another thread that wants the same value, and a lock there deadlocks (the
/// shape <see cref="Lazy{T}"/> has). Two threads may both build it; the first to publish wins and
/// the other's copy is released.
/// </summary>
internal sealed class PythonLazy(Func<PyObject> factory)
{
    private PyObject? _value;

    public PyObject Value => Volatile.Read(ref _value) ?? Create();

    private PyObject Create()
    {
        using var gil = Gil.Acquire();
        var built = factory();
        var winner = Interlocked.CompareExchange(ref _value, built, null);
        if (winner is not null)
        {
            built.Dispose();
            return winner;
        }
        ObjectFinalizationHooks.Register(() => Interlocked.Exchange(ref _value, null)?.Dispose());
        return built;
    }
}
