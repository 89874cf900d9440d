namespace AsyncioRaw.Asyncio;

internal static class AsyncErrors
{
    /// <summary>The pending Python error as the exception an awaiting .NET caller should see:
    /// CancelledError becomes OperationCanceledException (with the Python exception inside).
    /// Requires the GIL.</summary>
    internal static Exception Fetch() => ForAwait(PythonException.Fetch());

    internal static Exception ForAwait(Exception e) =>
        e is PythonException pe && IsCancelledError(pe)
            ? new OperationCanceledException($"The Python awaitable was cancelled ({pe.Message}).", pe)
            : e;

    private static bool IsCancelledError(PythonException e)
    {
        using var gil = Gil.Acquire();
        try { return PyBorrowed.Of(e.Value).IsInstanceOf(PyNames.CancelledError); }
        catch (Exception) { return false; } // isinstance() raising means it is not one we can tell
    }

    /// <summary>The .NET exception a faulted or canceled task ended with.</summary>
    internal static Exception Of(Task task) =>
        task.IsCanceled ? new OperationCanceledException("The .NET task was canceled.")
        : task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerExceptions[0] : task.Exception;
}
