using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using AsyncioRaw.Interop;

namespace AsyncioRaw;

/// <summary>
/// Work that needs the GIL, requested by threads that do not hold it (the finalizer thread above
/// all): decrefs, disposals of objects that may be in use by a call on another thread, and the
/// thread states of exited threads. Queued without blocking and performed the next time any thread
/// holds the GIL through us.
/// </summary>
internal static unsafe class DeferredRelease
{
    private static readonly ConcurrentQueue<nint> s_queue = new();
    private static readonly ConcurrentQueue<(PyObject Owner, nint Handle)> s_disposed = new();

    private const int DecrefsPending = 1, ThreadStatesPending = 2;
    // One word for both kinds, so that taking the GIL checks both with one read.
    private static int s_pending;

    internal static void Enqueue(nint obj)
    {
        s_queue.Enqueue(obj);
        Interlocked.Or(ref s_pending, DecrefsPending);
    }

    /// <summary>A disposal without the GIL: the owner may be in use by a call on another thread,
    /// which the drain respects (see <see cref="PyObject.ReleaseUnderGil"/>).</summary>
    internal static void EnqueueDisposed(PyObject owner, nint handle)
    {
        s_disposed.Enqueue((owner, handle));
        Interlocked.Or(ref s_pending, DecrefsPending);
    }

    internal static void SignalDeadThreadStates() => Interlocked.Or(ref s_pending, ThreadStatesPending);

    /// <summary>Everything pending. Requires the GIL, taken through an outermost hold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void DrainIfPending()
    {
        if (Volatile.Read(ref s_pending) != 0) Drain();
    }

    /// <summary>Decrefs only: for callbacks, which run on a thread state Python may be using.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void DrainDecrefsIfPending()
    {
        if ((Volatile.Read(ref s_pending) & DecrefsPending) != 0) DrainDecrefs();
    }

    /// <summary>Requires the GIL.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void Drain()
    {
        DrainDecrefs();
        if ((Volatile.Read(ref s_pending) & ThreadStatesPending) != 0)
        {
            Interlocked.And(ref s_pending, ~ThreadStatesPending);
            Gil.ReapDeadThreadStates();
            if (Gil.HasDeadThreadStates) SignalDeadThreadStates(); // left for a later hold
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DrainDecrefs()
    {
        Interlocked.And(ref s_pending, ~DecrefsPending);
        while (s_disposed.TryDequeue(out var item))
            item.Owner.ReleaseUnderGil(item.Handle);
        while (s_queue.TryDequeue(out var obj))
            CPython.Py_DecRef((NativePyObject*)obj);
    }

    /// <summary>After finalization the objects are gone with the interpreter; forget them.</summary>
    internal static void Discard()
    {
        s_queue.Clear();
        s_disposed.Clear();
    }

    internal static int Count => s_queue.Count + s_disposed.Count;
}
