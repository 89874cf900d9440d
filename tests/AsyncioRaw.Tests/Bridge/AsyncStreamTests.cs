using System.Runtime.CompilerServices;
using AsyncioRaw;

namespace AsyncioRaw.Tests.Bridge;

[TestFixture]
public class AsyncStreamTests
{
    private const string Source = """
        import asyncio
        produced = []
        closed = []

        async def ticking(n, delay):
            for i in range(n):
                await asyncio.sleep(delay)
                produced.append(i)
                yield i

        async def burst(n):
            for i in range(n):
                yield i

        async def failing():
            yield 0
            yield 1
            raise ValueError('item 2 failed')

        async def guarded():
            try:
                for i in range(100):
                    yield i
            finally:
                closed.append('closed')

        class Countdown:
            def __init__(self, n):
                self.n = n
            def __aiter__(self):
                return self
            async def __anext__(self):
                if self.n == 0:
                    raise StopAsyncIteration
                self.n -= 1
                return self.n

        async def consume(it, limit=None):
            out = []
            async for x in it:
                out.append(x)
                if limit is not None and len(out) >= limit:
                    break
            return out
        """;

    private static PyObject? s_globals;
    private static PyObject G(string name) => (s_globals ??= Py.Run(Source))[name];

    [SetUp]
    public void Reset()
    {
        using (G("produced").CallMethod("clear")) { }
        using (G("closed").CallMethod("clear")) { }
    }

    private static async Task<List<long>> Collect(PyObject iterable, int? limit = null)
    {
        var items = new List<long>();
        await foreach (var x in iterable.AsAsyncEnumerable<long>())
        {
            items.Add(x);
            if (items.Count == limit) break;
        }
        return items;
    }

    [Test]
    public void An_async_generator_with_sleeps_is_collected_in_order()
    {
        var items = Asyncio.Run(_ => Collect(G("ticking").Call(10, 0.01)));
        Assert.That(items, Is.EqualTo(Enumerable.Range(0, 10).Select(i => (long)i)));
    }

    [Test]
    public void A_thousand_items_yielded_without_awaiting_are_all_collected()
    {
        var items = Asyncio.Run(_ => Collect(G("burst").Call(1000)));
        Assert.That(items, Has.Count.EqualTo(1000));
        Assert.That(items.Sum(), Is.EqualTo(999 * 1000 / 2));
    }

    [Test]
    public void Items_are_pulled_one_at_a_time()
    {
        var producedWhenThirdArrived = Asyncio.Run(async _ =>
        {
            long produced = -1;
            int seen = 0;
            await foreach (var x in G("ticking").Call(10, 0.001).AsAsyncEnumerable<long>())
            {
                if (++seen == 3)
                {
                    await Task.Delay(50); // a slow consumer: the producer must not run ahead
                    produced = G("produced").Length;
                    break;
                }
            }
            return produced;
        });
        Assert.That(producedWhenThirdArrived, Is.EqualTo(3));
    }

    [Test]
    public void An_error_surfaces_at_the_failing_item()
    {
        var (items, error) = Asyncio.Run(async _ =>
        {
            var got = new List<long>();
            try
            {
                await foreach (var x in G("failing").Call().AsAsyncEnumerable<long>()) got.Add(x);
                return (got, (string?)null);
            }
            catch (PythonException e)
            {
                return (got, e.Message);
            }
        });
        Assert.That(items, Is.EqualTo(new long[] { 0, 1 }));
        Assert.That(error, Is.EqualTo("ValueError: item 2 failed"));
    }

    [Test]
    public void Breaking_early_closes_the_generator()
    {
        var items = Asyncio.Run(_ => Collect(G("guarded").Call(), limit: 3));
        Assert.That(items, Has.Count.EqualTo(3));
        Assert.That(G("closed").ToClr(), Is.EqualTo(new List<object?> { "closed" }));
    }

    [Test]
    public void Plain_async_iterator_objects_work_too()
    {
        var items = Asyncio.Run(_ => Collect(G("Countdown").Call(4)));
        Assert.That(items, Is.EqualTo(new long[] { 3, 2, 1, 0 }));
    }

    private static async IAsyncEnumerable<long> Numbers(int n, StrongBox<string> log, [EnumeratorCancellation] CancellationToken ct = default)
    {
        try
        {
            for (int i = 0; i < n; i++)
            {
                await Task.Delay(2, ct);
                yield return i;
            }
            log.Value += "completed;";
        }
        finally
        {
            log.Value += ct.IsCancellationRequested ? "cancelled;" : "disposed;";
        }
    }

    [Test]
    public void A_NET_async_enumerable_is_an_async_iterator_in_Python()
    {
        var log = new StrongBox<string>("");
        var items = Asyncio.Run(async _ =>
        {
            using var iterator = PyAsyncStreams.ToPython(Numbers(10, log));
            using var result = await PyAwaitable.ToTask(G("consume").Call(iterator));
            return result.ToClr();
        });
        Assert.That(items, Is.EqualTo(Enumerable.Range(0, 10).Select(i => (object?)(long)i).ToList()));
        Assert.That(log.Value, Is.EqualTo("completed;disposed;"));
    }

    [Test]
    public void Python_stopping_early_cancels_the_NET_enumeration()
    {
        var log = new StrongBox<string>("");
        var items = Asyncio.Run(async _ =>
        {
            var iterator = PyAsyncStreams.ToPython(Numbers(1000, log));
            using var consume = G("consume");
            using var resultTask = consume.Call(iterator, 3);
            iterator.Dispose(); // Python holds the only reference now: break drops it
            using var result = await PyAwaitable.ToTask(resultTask);
            for (int i = 0; i < 100 && string.IsNullOrEmpty(log.Value); i++) await Task.Delay(10);
            return result.ToClr();
        });
        Assert.That(items, Is.EqualTo(new List<object?> { 0L, 1L, 2L }));
        Assert.That(log.Value, Is.EqualTo("cancelled;"));
    }
}
