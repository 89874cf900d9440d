"""Uses hashmod, a module written in C#, from plain Python:

    dotnet publish samples/HashModule -c Release -r linux-x64 -p:PublishAot=true
    PYTHONPATH=samples/HashModule/bin/Release/net10.0/linux-x64/publish python3 samples/HashModule/demo.py
"""
import asyncio
import sys

import hashmod


async def main():
    print(hashmod.__doc__, "|", hashmod.RUNTIME)
    print("add1(41) =", hashmod.add1(41))
    print("sha256(b'abc') =", await hashmod.sha256(b"abc"))
    print("sha256_file(python) =", await hashmod.sha256_file(sys.executable))
    async for i in hashmod.ticks(3, 100, "demo"):
        print("tick", i)
    try:
        await asyncio.wait_for(hashmod.sleep_ms(10_000), timeout=0.1)
    except asyncio.TimeoutError:
        print("sleep_ms(10000) timed out; its .NET token was cancelled")

    async def shout(word):
        await asyncio.sleep(0.01)
        return word.upper()

    print(await hashmod.map_async(shout, ["python", "awaits", "dotnet", "awaits", "python"]))


asyncio.run(main())
