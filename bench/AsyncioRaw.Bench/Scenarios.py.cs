namespace AsyncioRaw.Bench;

internal static class ScenarioCode
{
    /// <summary>The scenario functions exactly as SCENARIOS.md defines them, plus the pure-Python floors.</summary>
    internal const string Source = """
        import asyncio
        async def add1(x):        # completes without suspending
            return x + 1
        async def sleep0(x):      # suspends once: one event-loop iteration
            await asyncio.sleep(0)
            return x
        async def sleep1ms(x):
            await asyncio.sleep(0.001)
            return x
        def add1_sync(x):
            return x + 1

        from time import perf_counter

        async def floor_f1(n):
            t = perf_counter(); s = 0
            for i in range(n):
                s += await asyncio.ensure_future(add1(i))
            return perf_counter() - t, s

        async def floor_f2(n):
            t = perf_counter(); s = 0
            for i in range(n):
                s += await sleep0(i)
            return perf_counter() - t, s

        async def floor_f3(n):
            t = perf_counter()
            r = await asyncio.gather(*[sleep1ms(i) for i in range(n)])
            return perf_counter() - t, sum(r)

        async def floor_f4(n):
            f = asyncio.get_running_loop().create_future()
            f.set_result(1)
            t = perf_counter(); s = 0
            for i in range(n):
                s += await f
            return perf_counter() - t, s

        async def floor_f4fresh(n):
            loop = asyncio.get_running_loop()
            t = perf_counter(); s = 0
            for i in range(n):
                f = loop.create_future()
                f.set_result(i)
                s += await f
            return perf_counter() - t, s

        async def floor_p1(n):
            t = perf_counter(); s = 0
            for i in range(n):
                s += await add1(i)
            return perf_counter() - t, s

        async def py_level(dotnet_level, d):
            if d == 0:
                return 0
            return await dotnet_level(d - 1) + 1

        async def s4(dotnet_ready, n):
            t = perf_counter(); s = 0
            for i in range(n):
                s += await dotnet_ready(i)
            return perf_counter() - t, s

        async def s5(dotnet_delay_1ms, n):
            t = perf_counter()
            r = await asyncio.gather(*[dotnet_delay_1ms(i) for i in range(n)])
            return perf_counter() - t, sum(r)
        """;
}
