"""hashmod, a C# module published with NativeAOT, seen from plain Python.

Run with the published hashmod.so on PYTHONPATH (scripts/module-tests.sh does):
    PYTHONPATH=samples/HashModule/bin/Release/net10.0/linux-x64/publish python3 -m unittest discover -s samples/HashModule/tests -v
HASHMOD_LOOP=uvloop runs every async test on uvloop.
"""
import asyncio
import concurrent.futures
import contextvars
import gc
import hashlib
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest

import hashmod

if os.environ.get("HASHMOD_LOOP") == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

request_id = contextvars.ContextVar("request_id")


async def eventually(predicate, timeout=5.0):
    """Polls predicate on the running loop: .NET continuations reach the loop a moment later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def run_child(source, timeout=30, env=None):
    """Runs source in a fresh interpreter that imports hashmod; returns (returncode, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, **(env or {})))
    return p.returncode, p.stdout, p.stderr


class ImportTests(unittest.TestCase):
    def test_python_symbols_come_from_this_process(self):
        self.assertTrue(hashmod.python_library().startswith("(process)"), hashmod.python_library())
        with open("/proc/self/maps") as maps:
            libpythons = {line.split()[-1] for line in maps if "libpython" in line}
        # pyenv: the one libpython the executable links; Debian: none (it is in the executable).
        self.assertLessEqual(len(libpythons), 1, libpythons)

    def test_module_attributes(self):
        self.assertEqual(hashmod.__name__, "hashmod")
        self.assertIn("C#", hashmod.__doc__)
        self.assertEqual(hashmod.CHUNK_SIZE, 1 << 20)
        self.assertTrue(hashmod.RUNTIME.startswith(".NET"))
        self.assertTrue(hashmod.__file__.endswith("hashmod.so"))
        self.assertEqual(hashmod.add1.__name__, "add1")
        self.assertIn("x + 1", hashmod.add1.__doc__)

    def test_reimport_gives_the_same_module(self):
        import importlib
        self.assertIs(importlib.import_module("hashmod"), hashmod)

    def test_import_in_a_sub_interpreter_is_refused(self):
        code, out, err = run_child("""
            try:
                import _xxsubinterpreters as interpreters
            except ImportError:
                import _interpreters as interpreters  # 3.13
            configs = [("default", {})]
            if hasattr(interpreters, "new_config"):  # 3.13: also the legacy (shared GIL) kind
                configs.append(("legacy", {"config": interpreters.new_config("legacy")}))
            elif "isolated" in interpreters.create.__doc__ or "":
                configs.append(("legacy", {"isolated": False}))
            for label, kwargs in configs:
                interp = interpreters.create(**kwargs)
                try:
                    failure = interpreters.run_string(interp, "import hashmod")
                except Exception as e:  # 3.9-3.12 raise RunFailedError
                    failure = e
                print(label, "refused:" if failure else "IMPORTED", failure)
            """)
        self.assertEqual(code, 0, err)
        self.assertNotIn("IMPORTED", out)
        for line in out.splitlines():
            self.assertRegex(line, "ImportError.*(sub-interpreter|subinterpreters)")
        self.assertIn("default refused", out)

    def test_first_import_on_a_python_thread(self):
        code, out, err = run_child("""
            import asyncio, threading
            result = []
            def worker():
                import hashmod
                async def main():
                    return await hashmod.sleep_ms(1)
                result.append((hashmod.add1(1), asyncio.run(main())))
            t = threading.Thread(target=worker)
            t.start(); t.join(10)
            import hashmod
            print(result, hashmod.add1(2))
            """)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.strip(), "[(2, 1)] 3")

    def test_a_failing_definition_is_an_import_error(self):
        for where, expected in (("define", "System.InvalidOperationException: the definition failed on purpose"),
                                ("exec", "cannot be forwarded to .NET")):
            code, out, err = run_child("""
                for attempt in range(2):
                    try:
                        import hashmod
                        print("IMPORTED")
                    except ImportError as e:
                        print("ImportError:", e)
                """, env={"HASHMOD_TEST_FAIL_IMPORT": where})
            self.assertEqual(code, 0, err)
            self.assertNotIn("IMPORTED", out)
            self.assertEqual(out.count(expected), 2, out)


class SyncFunctionTests(unittest.TestCase):
    def test_add1(self):
        self.assertEqual(hashmod.add1(41), 42)
        self.assertEqual(hashmod.add1(-(2 ** 62)), -(2 ** 62) + 1)

    def test_two_arguments(self):
        self.assertEqual(hashmod.concat("a", "b"), "ab")

    def test_keywords_and_defaults_through_a_signature(self):
        import inspect
        self.assertEqual(hashmod.concat("a"), "a!")
        self.assertEqual(hashmod.concat(b="y", a="x"), "xy")
        self.assertEqual(str(inspect.signature(hashmod.concat)), "(a, b='!')")
        self.assertEqual(hashmod.concat.__name__, "concat")
        self.assertIn("a + b", hashmod.concat.__doc__)
        with self.assertRaises(TypeError):
            hashmod.concat("a", c=1)
        with self.assertRaises(TypeError):
            hashmod.concat()
        # No signature declared: positional only, refused as a builtin refuses keywords.
        with self.assertRaisesRegex(TypeError, "add1\\(\\) takes no keyword arguments"):
            hashmod.add1(x=1)

    def test_wrong_type_is_a_type_error(self):
        with self.assertRaises(TypeError):
            hashmod.add1("x")
        with self.assertRaises(TypeError) as cm:
            hashmod.concat("a", 2)
        self.assertIn("argument 2", str(cm.exception))

    def test_wrong_argument_count_is_refused(self):
        # The TypeError Python raises for a def of the same shape, in its words.
        with self.assertRaisesRegex(TypeError, r"add1\(\) takes 1 positional argument but 0 were given"):
            hashmod.add1()
        with self.assertRaisesRegex(TypeError, r"add1\(\) takes 1 positional argument but 2 were given"):
            hashmod.add1(1, 2)

    def test_overflow_is_an_error_not_a_wrong_answer(self):
        with self.assertRaises((OverflowError, ValueError)):
            hashmod.add1(2 ** 70)

    def test_a_returned_object_is_released_at_once(self):
        # The .NET side's reference goes with the return, not when the .NET GC runs.
        class Tracked:
            deleted = False

            def __del__(self):
                Tracked.deleted = True

        o = object()
        before = sys.getrefcount(o)
        for _ in range(100):
            self.assertIs(hashmod.identity(o), o)
        self.assertEqual(sys.getrefcount(o), before)
        hashmod.identity(Tracked())
        self.assertTrue(Tracked.deleted)

    def test_sha256_sync(self):
        data = os.urandom(100_000)
        self.assertEqual(hashmod.sha256_sync(data), hashlib.sha256(data).hexdigest())


class AsyncFunctionTests(unittest.IsolatedAsyncioTestCase):
    async def test_sleep_ms_returns_its_argument(self):
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.assertEqual(await hashmod.sleep_ms(30), 30)
        self.assertGreaterEqual(loop.time() - start, 0.025)

    async def test_sleeps_run_concurrently(self):
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await asyncio.gather(*(hashmod.sleep_ms(100) for _ in range(50)))
        self.assertEqual(results, [100] * 50)
        self.assertLess(loop.time() - start, 2.0)

    async def test_sha256_small_and_chunked(self):
        for size in (0, 3, 1 << 20, (5 << 20) + 7):
            data = os.urandom(size)
            self.assertEqual(await hashmod.sha256(data), hashlib.sha256(data).hexdigest(), size)

    async def test_loop_keeps_running_while_a_large_hash_runs(self):
        data = bytes(range(256)) * (64 << 10)  # 16 MiB, made quickly
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.ensure_future(ticker())
        try:
            digest = await hashmod.sha256(data)
        finally:
            t.cancel()
        self.assertEqual(digest, hashlib.sha256(data).hexdigest())
        self.assertGreater(ticks, 1)

    async def test_sha256_file(self):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            data = os.urandom((3 << 20) + 11)
            f.write(data)
        try:
            self.assertEqual(await hashmod.sha256_file(f.name), hashlib.sha256(data).hexdigest())
            self.assertEqual(await hashmod.sha256_file(f.name, chunk_size=7), hashlib.sha256(data).hexdigest())
            with self.assertRaises(TypeError):
                await hashmod.sha256_file(f.name, 7)  # chunk_size is keyword-only
            with self.assertRaises(ValueError):
                await hashmod.sha256_file(f.name, chunk_size=0)
        finally:
            os.unlink(f.name)

    async def test_missing_file_carries_the_dotnet_type(self):
        with self.assertRaises(Exception) as cm:
            await hashmod.sha256_file(os.path.join(tempfile.gettempdir(), "hashmod-no-such-file"))
        self.assertIn("System.IO.FileNotFoundException", str(cm.exception))
        self.assertIn("FileNotFoundException", cm.exception.dotnet_type)

    async def test_dotnet_exception_crosses_with_its_type_name(self):
        import asyncioraw
        with self.assertRaises(asyncioraw.DotNetError) as cm:
            await hashmod.fail("boom")
        self.assertIn("System.InvalidOperationException: boom", str(cm.exception))
        self.assertEqual(cm.exception.dotnet_type, "System.InvalidOperationException")
        self.assertIn("Definition", cm.exception.dotnet_stack_trace)

    async def test_a_dotnet_cancellation_python_did_not_ask_for_is_catchable(self):
        import asyncioraw

        async def caller():
            try:
                await hashmod.give_up()
            except Exception as e:  # not a CancelledError: nobody cancelled this task
                return e
            return None

        task = asyncio.ensure_future(caller())
        error = await task
        self.assertIsInstance(error, asyncioraw.DotNetError)
        self.assertIn("System.OperationCanceledException: the .NET side gave up on its own", str(error))
        self.assertFalse(task.cancelled())
        if hasattr(task, "cancelling"):  # 3.11+: the task was never asked to cancel
            self.assertEqual(task.cancelling(), 0)

    async def test_cancelling_the_task_cancels_the_token(self):
        task = asyncio.ensure_future(hashmod.watch("cancel-1", 60_000))
        await asyncio.sleep(0.05)
        self.assertEqual(hashmod.outcome("cancel-1"), "running")
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertTrue(await eventually(lambda: hashmod.outcome("cancel-1") == "cancelled"),
                        hashmod.outcome("cancel-1"))

    async def test_timeout_cancels_the_token(self):
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(hashmod.watch("timeout-1", 60_000), 0.05)
        self.assertTrue(await eventually(lambda: hashmod.outcome("timeout-1") == "cancelled"),
                        hashmod.outcome("timeout-1"))

    async def test_completed_work_is_not_cancelled(self):
        await hashmod.watch("done-1", 1)
        self.assertEqual(hashmod.outcome("done-1"), "completed")

    async def test_dropping_the_awaitable_unawaited_cancels_the_work(self):
        awaitable = hashmod.watch("dropped-1", 60_000)
        await asyncio.sleep(0.02)
        self.assertEqual(hashmod.outcome("dropped-1"), "running")
        del awaitable
        gc.collect()
        self.assertTrue(await eventually(lambda: hashmod.outcome("dropped-1") == "cancelled"),
                        hashmod.outcome("dropped-1"))


class AsyncGeneratorTests(unittest.IsolatedAsyncioTestCase):
    async def test_async_for_to_the_end(self):
        items = [i async for i in hashmod.ticks(5, 1, "gen-all")]
        self.assertEqual(items, [0, 1, 2, 3, 4])
        self.assertTrue(await eventually(lambda: hashmod.outcome("gen-all") == "completed"))

    async def test_early_break_cancels_the_dotnet_side(self):
        seen = []
        async for i in hashmod.ticks(1_000, 5, "gen-break"):
            seen.append(i)
            if i == 2:
                break
        self.assertEqual(seen, [0, 1, 2])
        gc.collect()
        self.assertTrue(await eventually(lambda: hashmod.outcome("gen-break") == "cancelled"),
                        hashmod.outcome("gen-break"))

    async def test_cancelling_the_iterating_task_cancels_the_dotnet_side(self):
        async def consume():
            async for _ in hashmod.ticks(1_000, 20, "gen-cancel"):
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        # When the cancel lands between two items, only the iterator's collection stops the .NET
        # side (as for an async generator), and the task's CancelledError traceback holds the
        # iterator's frame: drop it.
        del task
        gc.collect()
        self.assertTrue(await eventually(lambda: hashmod.outcome("gen-cancel") == "cancelled"),
                        hashmod.outcome("gen-cancel"))


class CallbackTests(unittest.IsolatedAsyncioTestCase):
    async def test_map_async_awaits_python_coroutines(self):
        async def double(x):
            await asyncio.sleep(0)
            return 2 * x

        self.assertEqual(await hashmod.map_async(double, [1, 2, 3]), [2, 4, 6])

    async def test_contextvars_reach_callbacks_awaited_from_dotnet(self):
        async def tagged(x):
            await asyncio.sleep(0)
            return f"{request_id.get('unset')}:{x}"

        async def request(rid):
            request_id.set(rid)
            return await hashmod.map_async(tagged, [1, 2])

        results = await asyncio.gather(request("a"), request("b"))
        self.assertEqual(results, [["a:1", "a:2"], ["b:1", "b:2"]])

    async def test_python_exception_in_a_callback_comes_back_as_itself(self):
        class Boom(ValueError):
            pass

        async def fails(x):
            raise Boom(f"bad {x}")

        with self.assertRaises(Boom) as cm:
            await hashmod.map_async(fails, [7])
        self.assertEqual(str(cm.exception), "bad 7")

    async def test_cancelling_map_async_cancels_the_awaited_coroutine(self):
        cancelled = asyncio.Event()

        async def slow(x):
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        task = asyncio.ensure_future(hashmod.map_async(slow, [1]))
        await asyncio.sleep(0.05)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(cancelled.wait(), 5)


class ThreadTests(unittest.TestCase):
    def test_threads_call_sync_functions_concurrently(self):
        def work(seed):
            total = 0
            for i in range(2_000):
                total += hashmod.add1(seed + i)
            return total

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, range(16)))
        self.assertEqual(results, [sum(s + i + 1 for i in range(2_000)) for s in range(16)])

    def test_each_thread_runs_its_own_event_loop(self):
        def run(n):
            async def main():
                values = await asyncio.gather(*(hashmod.sleep_ms(5) for _ in range(n)))
                digest = await hashmod.sha256(b"x" * n)
                return sum(values), digest
            return asyncio.run(main())

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(run, range(1, 9)))
        self.assertEqual(results, [(5 * n, hashlib.sha256(b"x" * n).hexdigest()) for n in range(1, 9)])

    def test_dotnet_pool_thread_calls_back_into_python(self):
        callers = []

        def record(x):
            callers.append(threading.get_ident())
            return x * 10

        async def main():
            return await asyncio.gather(*(hashmod.call_from_pool(record, i) for i in range(20)))

        self.assertEqual(asyncio.run(main()), [i * 10 for i in range(20)])
        self.assertNotIn(threading.get_ident(), callers)

    def test_to_thread_over_a_function_that_releases_the_gil(self):
        data = os.urandom(8 << 20)

        async def main():
            hashes = [asyncio.to_thread(hashmod.sha256_sync, data) for _ in range(4)]
            return await asyncio.gather(*hashes)

        self.assertEqual(asyncio.run(main()), [hashlib.sha256(data).hexdigest()] * 4)


class InterruptTests(unittest.TestCase):
    def test_ctrl_c_during_asyncio_run_is_a_keyboard_interrupt(self):
        import signal
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
            import asyncio, sys, hashmod
            async def main():
                watching = asyncio.ensure_future(hashmod.watch("ctrl-c", 60_000))
                await asyncio.sleep(0.05)
                print("ready", hashmod.outcome("ctrl-c"), flush=True)
                await watching
            try:
                asyncio.run(main())
            except KeyboardInterrupt:
                print("interrupted", hashmod.outcome("ctrl-c"), flush=True)
            """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            self.assertEqual(child.stdout.readline().strip(), "ready running")
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=20)
        finally:
            if child.poll() is None:
                child.kill()
        self.assertEqual(child.returncode, 0, err)
        # asyncio.run cancels the main task on Ctrl-C (3.11+); before, the loop just stops.
        self.assertRegex(out, r"interrupted (cancelled|running)")


class ShutdownTests(unittest.TestCase):
    """The library closes its gate from an atexit handler: .NET threads are refused from then on,
    and those already inside Python (or waiting for the GIL) are waited for, GIL released."""

    def assert_clean_exit(self, source, code=0):
        import time
        start = time.monotonic()
        returncode, out, err = run_child(source)
        elapsed = time.monotonic() - start
        self.assertEqual(returncode, code, f"stdout: {out}\nstderr: {err}")
        self.assertNotIn("Fatal", err)
        self.assertNotIn("AsyncioRaw:", err)  # no thread left behind, no failure reported
        self.assertIn("done", out)
        self.assertLess(elapsed, 15, "the exit waited too long")
        return out, err

    def test_exit_with_a_pending_dotnet_task(self):
        self.assert_clean_exit("""
            import asyncio, hashmod
            async def main():
                asyncio.ensure_future(hashmod.sleep_ms(60_000))
                asyncio.ensure_future(hashmod.sha256(bytes(64 << 20)))
                await asyncio.sleep(0.05)
            asyncio.run(main())
            print("done")
            """)

    def test_exit_while_dotnet_threads_want_the_gil(self):
        self.assert_clean_exit("""
            import hashmod
            for ms in range(0, 50, 2):
                hashmod.background(ms)
            print("done")
            """)

    def test_exit_while_dotnet_pool_threads_keep_calling_python(self):
        for _ in range(3):
            self.assert_clean_exit("""
                import hashmod
                calls = []
                hashmod.call_forever(lambda: calls.append(1), 8)
                while len(calls) < 1000:
                    pass  # the .NET threads take the GIL from this thread over and over
                print("done")
                """)

    def test_exit_while_dotnet_threads_wait_for_a_busy_gil(self):
        # The main thread holds the GIL (but for the switch interval) until it exits: the .NET
        # threads are queued on it when the atexit handler runs.
        self.assert_clean_exit("""
            import hashmod
            hashmod.call_forever(lambda: sum(range(1000)), 16)
            total = sum(range(3_000_000))
            print("done")
            """)

    def test_exit_waits_for_a_dotnet_thread_inside_python(self):
        # The .NET thread is inside a hold while its call sleeps (the GIL released in Python):
        # finalizing under it would end or freeze it when it takes the GIL back.
        out, _ = self.assert_clean_exit("""
            import atexit, os, threading, time, hashmod
            entered = threading.Event()
            def slow():
                entered.set()
                time.sleep(0.3)
                os.write(1, b"slow call finished\\n")
            hashmod.call_forever(slow, 2)
            entered.wait(10)
            print("done", flush=True)
            """)
        self.assertIn("slow call finished", out)

    def test_exit_with_sys_exit_keeps_the_exit_code(self):
        self.assert_clean_exit("""
            import sys, hashmod
            hashmod.call_forever(lambda: None, 4)
            for ms in range(0, 20, 2):
                hashmod.background(ms)
            print("done")
            sys.exit(3)
            """, code=3)

    def test_atexit_handlers_and_daemon_threads_at_exit(self):
        # Handlers registered before the import run after the gate closed, on the finalizing
        # thread, which may still call .NET; a daemon Python thread is refused with RuntimeError.
        out, _ = self.assert_clean_exit("""
            import atexit, threading
            atexit.register(lambda: print("before-import handler", hashmod.add1(1), flush=True))
            import hashmod
            atexit.register(lambda: print("after-import handler", hashmod.add1(2), flush=True))
            refused = []
            def daemon():
                try:
                    while True:
                        hashmod.add1(1)
                except RuntimeError as e:
                    refused.append(str(e))
            threading.Thread(target=daemon, daemon=True).start()
            atexit.register(lambda: print("refused:", refused, flush=True))
            print("done")
            """)
        self.assertIn("after-import handler 3", out)
        self.assertIn("before-import handler 2", out)

    def test_exit_with_a_loop_thread_still_awaiting_dotnet(self):
        self.assert_clean_exit("""
            import asyncio, threading, hashmod
            started = threading.Event()
            async def forever():
                started.set()
                await hashmod.sleep_ms(60_000)
            threading.Thread(target=lambda: asyncio.run(forever()), daemon=True).start()
            started.wait(5)
            print("done")
            """)


class TwoModulesTests(unittest.TestCase):
    """Two C# modules in one process, each with its own copy of the library and its own .NET
    runtime: here the same hashmod.so copied to a second path and loaded as twin.hashmod (a
    second file is a second dlopen, so a second copy of everything)."""

    def test_two_copies_share_one_asyncioraw_and_keep_their_exceptions_apart(self):
        code, out, err = run_child("""
            import asyncio, importlib.util, os, shutil, sys, tempfile
            import hashmod, asyncioraw
            folder = tempfile.mkdtemp()
            path = shutil.copy(hashmod.__file__, os.path.join(folder, "hashmod.so"))
            spec = importlib.util.spec_from_file_location("twin.hashmod", path)
            twin = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(twin)
            shutil.rmtree(folder)
            assert twin is not hashmod and twin.add1 is not hashmod.add1
            assert sys.modules["asyncioraw"] is asyncioraw, "the second copy replaced asyncioraw"
            print("calls", hashmod.add1(1), twin.add1(2), twin.call_from_pool is not hashmod.call_from_pool)

            async def main():
                for label, m in (("first", hashmod), ("second", twin)):
                    try:
                        await m.fail(label)
                    except asyncioraw.DotNetError as e:
                        print(label, type(e).__name__, e.dotnet_type, e.dotnet_message)
                    try:
                        await m.sleep_ms("x")
                    except asyncioraw.DotNetTypeError as e:
                        print(label, "TypeError", isinstance(e, TypeError))
                # One copy's exception passing through the other: the second copy must not read
                # the first one's .NET handle as its own.
                try:
                    await twin.map_async(hashmod.fail, ["crossed"])
                except asyncioraw.DotNetError as e:
                    print("crossed", e.dotnet_message)
                print("pool", await twin.call_from_pool(hashmod.add1, 10), await hashmod.call_from_pool(twin.add1, 20))
                print("ticks", [i async for i in twin.ticks(3, 1, "twin")], await twin.sleep_ms(2))
            asyncio.run(main())
            twin.call_forever(lambda: hashmod.add1(0), 4)
            hashmod.call_forever(lambda: twin.add1(0), 4)
            print("done")
            """)
        self.assertEqual(code, 0, f"stdout: {out}\nstderr: {err}")
        self.assertNotIn("Fatal", err)
        self.assertIn("calls 2 3 True", out)
        self.assertIn("first DotNetError System.InvalidOperationException first", out)
        self.assertIn("second DotNetError System.InvalidOperationException second", out)
        self.assertIn("first TypeError True", out)
        self.assertIn("second TypeError True", out)
        self.assertIn("crossed crossed", out)
        self.assertIn("pool 11 21", out)
        self.assertIn("ticks [0, 1, 2] 2", out)
        self.assertIn("done", out)


if __name__ == "__main__":
    unittest.main()
