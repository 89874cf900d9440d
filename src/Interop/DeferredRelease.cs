using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// Decrefs requested by threads that do not hold the GIL (the finalizer thread above all). They
/// are queued without blocking and performed the next time any thread holds the GIL through us.
/// </summary>
internal static unsafe class DeferredRelease
{
    private static readonly ConcurrentQueue<nint> s_queue = new();
    private static int s_pending;

    internal static void Enqueue(nint obj)
    {
        s_queue.Enqueue(obj);
        Volatile.Write(ref s_pending, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void DrainIfPending()
    {
        if (Volatile.Read(ref s_pending) != 0) Drain();
    }

    /// <summary>Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void Drain()
    {
        Volatile.Write(ref s_pending, 0);
        while (s_queue.TryDequeue(out var obj))
            CPython.Py_DecRef((Interop.PyObject*)obj);
    }

    /// <summary>After finalization the objects are gone with the interpreter; forget them.</summary>
    internal static void Discard() => s_queue.Clear();

    internal static int Count => s_queue.Count;
}
