namespace AsyncioRaw.Tests;

[TestFixture]
public class OwnershipTests
{
    private static long RefCount(PyObject o)
    {
        using var sys = Py.Import("sys");
        using var getrefcount = sys.GetAttr("getrefcount");
        return getrefcount.Call<PyObject, long>(o);
    }

    private static void CollectEverything()
    {
        using (Gil.Acquire()) DeferredRelease.Drain();
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        using (Gil.Acquire()) DeferredRelease.Drain();
    }

    [Test]
    public void Use_after_dispose_is_ObjectDisposedException()
    {
        var o = PyConvert.ToPython("x");
        o.Dispose();
        o.Dispose(); // twice is fine
        Assert.Throws<ObjectDisposedException>(() => o.GetAttr("upper"));
        Assert.That(o.IsDisposed);
    }

    [Test]
    public void Dispose_releases_exactly_one_reference()
    {
        using var sentinel = Py.Eval("object()");
        long before = RefCount(sentinel);
        var extra = sentinel.NewReference();
        Assert.That(RefCount(sentinel), Is.EqualTo(before + 1));
        extra.Dispose();
        Assert.That(RefCount(sentinel), Is.EqualTo(before));
    }

    [Test]
    public void A_PyObject_returned_from_a_function_body_is_Pythons_at_once()
    {
        // Kept by the body's owner until the .NET GC ran, the result outlived Python's last
        // reference: __del__ (an async iterator's cancellation, a file's close) waited for a collection.
        using var globals = Py.Run("""
            import sys
            deleted = []
            class Tracked:
                def __del__(self):
                    deleted.append(1)
            def check(make, identity):
                sentinel = object()
                before = sys.getrefcount(sentinel)
                for _ in range(100):
                    assert identity(sentinel) is sentinel
                    assert identity([sentinel])[0] is sentinel  # a list of it: only the list comes back
                make()
                return f"{len(deleted)} {sys.getrefcount(sentinel) - before}"
            """);
        using var tracked = globals["Tracked"];
        using var make = PyFunction.Create("make", _ => tracked.Call());
        using var identity = PyFunction.Create<PyObject, PyObject>("identity", x => x);
        using var check = globals["check"];
        using var result = check.Call(make, identity);
        Assert.That(result.As<string>(), Is.EqualTo("1 0"), "__del__ calls, references left behind");
    }

    [Test]
    public void Dispose_without_the_GIL_is_deferred_until_some_thread_holds_it()
    {
        using var sentinel = Py.Eval("object()");
        long before = RefCount(sentinel);
        var extras = Enumerable.Range(0, 10).Select(_ => sentinel.NewReference()).ToList();
        var t = new Thread(() => extras.ForEach(e => e.Dispose()));
        t.Start();
        t.Join();
        using (Gil.Acquire()) { } // the next acquisition drains the queue
        Assert.That(RefCount(sentinel), Is.EqualTo(before));
    }

    [Test]
    public void A_million_undisposed_references_on_several_threads_are_all_released()
    {
        using var sentinel = Py.Eval("object()");
        CollectEverything();
        long before = RefCount(sentinel);
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            for (int i = 0; i < 250_000; i++) sentinel.NewReference(); // dropped on the floor
        });
        CollectEverything();
        Assert.That(RefCount(sentinel), Is.EqualTo(before));
    }

    [Test]
    public void Shared_singletons_survive_dispose()
    {
        Py.None.Dispose();
        Py.True.Dispose();
        Assert.That(Py.None.IsNone);
        Assert.That(Py.True.IsTrue());
        Assert.That(Py.False.IsTrue(), Is.False);
        using var fromNull = PyConvert.ToPython(null);
        Assert.That(fromNull.IsNone);
    }

    [Test]
    public void Borrowed_view_makes_owned_references_on_request()
    {
        using var s = PyConvert.ToPython("hello");
        long before = RefCount(s);
        using var owned = s.Borrow().ToOwned();
        Assert.That(RefCount(s), Is.EqualTo(before + 1));
        Assert.That(owned.As<string>(), Is.EqualTo("hello"));
    }

    [Test]
    public void Raw_handles_round_trip_for_embedders()
    {
        using var s = PyConvert.ToPython("raw");
        using var again = PyObject.FromBorrowedHandle(s.DangerousGetHandle());
        Assert.That(again.DangerousGetHandle(), Is.EqualTo(s.DangerousGetHandle()));
    }

    [Test]
    public void Managed_handles_keep_NET_objects_alive_inside_Python_and_free_them()
    {
        var weak = MakeHandleAndDrop();
        CollectEverything();
        Assert.That(weak.TryGetTarget(out _), Is.False, "the GCHandle was not freed with the capsule");

        static WeakReference<object> MakeHandleAndDrop()
        {
            var target = new object();
            using var capsule = ManagedHandle.Create(target);
            Assert.That(ManagedHandle.Get(capsule), Is.SameAs(target));
            return new WeakReference<object>(target);
        }
    }
}
