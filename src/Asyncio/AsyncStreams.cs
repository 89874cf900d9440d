using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// Async streams both ways. A Python async iterator (an async generator above all) is pulled one
/// item at a time (nothing is buffered ahead of the consumer); an error surfaces at the item that
/// failed; leaving the loop early closes the generator (<c>aclose</c>). A .NET IAsyncEnumerable
/// becomes a Python async iterator; when Python stops iterating (aclose, the iterating task being
/// cancelled, or the iterator being collected) the enumerator's token is cancelled.
/// </summary>
public static class PyAsyncStreams
{
    /// <summary><c>async for item in asyncIterable</c>, from .NET.</summary>
    public static async IAsyncEnumerable<T> AsAsyncEnumerable<T>(this PyObject asyncIterable, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var loop = TaskLocals.Current?.Loop;
        using var iterator = AsyncIter(asyncIterable);
        bool finished = false;
        try
        {
            while (true)
            {
                PyObject? item;
                using (var step = iterator.CallMethod("__anext__"))
                {
                    try
                    {
                        item = await (loop is null ? PyAwaitable.ToTask(step, cancellationToken) : PyAwaitable.ToTask(step, loop, cancellationToken));
                    }
                    catch (PythonException e) when (e.PythonTypeName == "StopAsyncIteration")
                    {
                        finished = true;
                        yield break;
                    }
                }
                T value;
                using (item)
                    value = typeof(T) == typeof(PyObject) ? (T)(object)item.NewReference() : item.As<T>();
                yield return value;
            }
        }
        finally
        {
            if (!finished && HasAclose(iterator))
            {
                // Early exit (break, exception, cancellation): let the generator run its finally blocks.
                using var closing = iterator.CallMethod("aclose");
                using var _ = await (loop is null ? PyAwaitable.ToTask(closing) : PyAwaitable.ToTask(closing, loop));
            }
        }
    }

    private static PyObject AsyncIter(PyObject asyncIterable)
    {
        using var type = asyncIterable.GetAttr("__class__");
        if (!type.HasAttr("__aiter__"))
            throw new ArgumentException($"A Python {asyncIterable.TypeName} is not an async iterable (no __aiter__).", nameof(asyncIterable));
        return asyncIterable.CallMethod("__aiter__");
    }

    private static bool HasAclose(PyObject iterator) => iterator.HasAttr("aclose");

    /// <summary>A Python async iterator over <paramref name="source"/>, usable in <c>async for</c>.</summary>
    public static PyObject ToPython<T>(IAsyncEnumerable<T> source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var state = new EnumeratorState<T>(source);
        using var next = PyFunction.CreateAsync("dotnet_anext", (_, ct) => state.NextAsync(ct));
        using var close = PyFunction.Create("dotnet_aclose", _ => { state.Close(); return null; });
        using var type = IteratorType.Value["DotNetAsyncIterator"];
        return type.Call(next, close);
    }

    private static readonly PythonLazy IteratorType = new(() => Py.Run("""
        class DotNetAsyncIterator:
            '''A .NET IAsyncEnumerable as a Python async iterator.'''
            __slots__ = ('_next', '_close', '__weakref__')

            def __init__(self, next, close):
                self._next = next
                self._close = close

            def __aiter__(self):
                return self

            async def __anext__(self):
                done, value = await self._next()
                if done:
                    raise StopAsyncIteration
                return value

            async def aclose(self):
                self._close()

            def __del__(self):
                self._close()
        """, fileName: "<asyncioraw streams>"));

    private sealed class EnumeratorState<T>(IAsyncEnumerable<T> source)
    {
        private readonly CancellationTokenSource _stop = new();
        private IAsyncEnumerator<T>? _enumerator;
        private int _busy;
        private bool _closed;

        internal async Task<object?> NextAsync(CancellationToken pythonCancelled)
        {
            if (Interlocked.Exchange(ref _busy, 1) != 0)
                throw new InvalidOperationException("__anext__ called while a previous one is still pending");
            try
            {
                if (_closed) return (true, (object?)null);
                _enumerator ??= source.GetAsyncEnumerator(_stop.Token);
                // Python cancelling this step (its task was cancelled) stops the enumeration.
                using var registration = pythonCancelled.Register(static s => ((CancellationTokenSource)s!).Cancel(), _stop);
                if (await _enumerator.MoveNextAsync()) return (false, (object?)_enumerator.Current);
                await CloseAsync();
                return (true, (object?)null);
            }
            finally
            {
                Volatile.Write(ref _busy, 0);
                if (_closed && _enumerator != null) await CloseAsync();
            }
        }

        internal void Close()
        {
            if (_closed) return;
            _closed = true;
            _stop.Cancel();
            // Otherwise the pending NextAsync disposes the enumerator when it returns.
            if (Volatile.Read(ref _busy) == 0)
                CloseAsync().ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
        }

        private async Task CloseAsync()
        {
            _closed = true;
            var e = Interlocked.Exchange(ref _enumerator, null);
            if (e != null) await e.DisposeAsync();
        }
    }
}
