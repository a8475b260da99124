"""The real NATS JetStream broker for the live-lane tests: started if it is down, and a stream of
its own per test (unique stream, subject and durable names), deleted afterwards."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from outreach.live.jetstream import DEFAULT_URL, JetStreamSink, StreamNames

HOST, PORT = "127.0.0.1", 4222


def _up() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=0.5):
            return True
    except OSError:
        return False


def ensure_nats() -> None:
    """Start this machine's nats-server with JetStream if nothing listens on 4222 (CI's fresh boot)."""
    if _up():
        return
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not shutil.which(binary):
        pytest.fail("NATS is not running and nats-server is not installed to start it")
    store = tempfile.mkdtemp(prefix="nats-js-")
    subprocess.Popen(  # outlives the test session, like the machine's service would
        [binary, "-a", HOST, "-p", str(PORT), "-js", "-sd", store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(50):
        if _up():
            return
        time.sleep(0.1)
    pytest.fail("nats-server did not come up on 4222")


def unique_names() -> StreamNames:
    tag = uuid.uuid4().hex[:10]
    return StreamNames(stream=f"TEST_{tag}", subject=f"test.{tag}.payments", durable=f"live-{tag}")


@pytest.fixture
def stream():
    ensure_nats()
    names = unique_names()
    yield names

    async def drop() -> None:
        sink = await JetStreamSink.open(DEFAULT_URL, names)
        try:
            await sink.js.delete_stream(names.stream)
        finally:
            await sink.close()

    asyncio.run(drop())
