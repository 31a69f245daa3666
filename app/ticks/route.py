"""GET /ticks: a streamed answer from an `async def` generator.

An async generator is a body too. minirouter drives it on the worker thread's
event loop, so it may await between pieces (asyncio.sleep here; an async
database or HTTP client in a real app).
"""
import asyncio

from minirouter import Response


async def ticks(count):
    for n in range(1, count + 1):
        await asyncio.sleep(0.1)
        yield f"tick {n}\n"


async def GET():
    return Response(ticks(3), headers={"Content-Type": "text/plain; charset=utf-8"})
