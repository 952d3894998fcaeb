"""HAProxy's agent check (`agent-check` on a server line): HAProxy connects to this port
every agent-inter and reads one line that sets the server's weight and state
(https://docs.haproxy.org/2.6/configuration.html#5.2-agent-check). The weight is the share
of session places still free, so a balancer with `balance leastconn` sends a new learner
where the fewest sessions are, by this process's own count (not by HAProxy's count of
connections, which includes page and reference downloads, connections still saying hello,
and nothing of the sessions another balancer in front of the same worker holds). A full or
draining process says "drain": HAProxy sends it no new connections and leaves the running
ones where they are.
"""

from __future__ import annotations

import asyncio

FULL_WEIGHT = 100


def agent_reply(sessions: int, capacity: int, draining: bool) -> str:
    """The line HAProxy reads: "up ready <weight>%" or "drain"."""
    free = capacity - sessions
    if draining or free <= 0:
        return "drain\n"
    weight = max(1, round(FULL_WEIGHT * free / capacity))
    return f"up ready {weight}%\n"


async def serve_agent(host: str, port: int, reply) -> asyncio.Server:
    """Answer every connection with reply() (a str) and close it."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(reply().encode())
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)
