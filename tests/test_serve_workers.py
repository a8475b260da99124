"""`outreach serve --workers N` starts N server processes on one port (uvicorn's app factory)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(sqlite_url: str, tmp_path: Path, workers: int, **env_extra: str) -> Iterator[tuple[int, int]]:
    """``outreach serve --workers N`` in its own session; yields (port, pid) once /healthz answers."""
    port = free_port()
    env = {**os.environ, "OUTREACH_DATABASE_URL": sqlite_url, "OUTREACH_UNSUBSCRIBE_SECRET": "t", **env_extra}
    if "PROMETHEUS_MULTIPROC_DIR" not in env_extra:
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the command makes its own
    log = (tmp_path / "serve.log").open("wb")
    command = ["serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        [sys.executable, "-c", "from outreach.cli import main; main()", *command],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, f"outreach serve --workers {workers} did not come up"
            time.sleep(0.2)
        yield port, process.pid
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_serve_with_two_workers_runs_two_server_processes(sqlite_url, tmp_path):
    with serving(sqlite_url, tmp_path, 2) as (_, pid):
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
        assert len(children.stdout.split()) >= 2, children.stdout  # one child per worker


def unmatched_404s(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "outreach_http_requests_total" and sample.labels.get("route") == "<unmatched>":
                return sample.value
    return 0.0


def test_every_worker_answers_a_scrape_with_the_sum_of_all_workers(sqlite_url, tmp_path):
    """Requests land on either process; whichever answers /metrics counts them all (multiprocess mode)."""
    with serving(sqlite_url, tmp_path, 2) as (port, _):
        for _ in range(30):  # a new connection each time, so the kernel spreads them over the workers
            assert httpx.get(f"http://127.0.0.1:{port}/no-such-page", timeout=5).status_code == 404
        scrapes = [httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text for _ in range(6)]
    assert [unmatched_404s(text) for text in scrapes] == [30.0] * 6
    assert "metrics of all workers are summed in" in (tmp_path / "serve.log").read_text()
