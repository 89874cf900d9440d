namespace AsyncioRaw;

internal static class AsyncErrors
{
    /// <summary>The pending Python error as the exception an awaiting .NET caller should see:
    /// CancelledError becomes OperationCanceledException (with the Python exception inside).
    /// Requires the GIL.</summary>
    internal static Exception Fetch() => ForAwait(PythonException.Fetch());

    /// <summary><paramref name="token"/>: that of the Task the exception will end, if any (see
    /// <see cref="PythonCancelledException"/>).</summary>
    internal static Exception ForAwait(Exception e, CancellationToken token = default) =>
        e is PythonException pe && IsCancelledError(pe)
            ? new PythonCancelledException($"The Python awaitable was cancelled ({pe.Message}).", pe, token)
            : e;

    private static bool IsCancelledError(PythonException e)
    {
        using var gil = Gil.Acquire();
        try { return PyBorrowed.Of(e.Value).IsInstanceOf(PyNames.CancelledError); }
        catch (Exception) { return false; } // isinstance() raising means it is not one we can tell
    }

    /// <summary>The .NET exception a faulted or canceled task ended with: for a canceled one, the
    /// OperationCanceledException it was canceled with (a PythonCancelledException stays one).</summary>
    internal static Exception Of(Task task)
    {
        if (task.IsCanceled)
        {
            try { task.GetAwaiter().GetResult(); }
            catch (OperationCanceledException e) { return e; }
            return new OperationCanceledException("The .NET task was canceled.");
        }
        return LoopBlockedException.Unwrap(task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerExceptions[0] : task.Exception);
    }
}
