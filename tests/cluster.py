"""A production-shaped Outreach installation on this machine, for the integration suite
(tests/test_scale_cluster.py) and the benchmark (bench/bench_scale.py).

What docs/production.md tells an operator to run, run for real: a Prefect server on this
machine's PostgreSQL (in its own database), `prefect work-pool create`, `prefect gcl create` for
the rate limits, `prefect automation create`, `prefect deploy --all` of the repository's
prefect.yaml, and `prefect worker start` processes. Every process starts in its own process group
(so a worker and the flow runs it spawned can be killed together, like a lost machine) and
``close()`` stops them all; every wait has a deadline.

The Prefect API is spoken to over plain HTTP (httpx) so that nothing here depends on the Prefect
settings of the process that imports it (a test session may hold a prefect_test_harness too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.timeshift.sitecustomize import python_path, shift_env

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class ClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_base(admin_url: str) -> str:
    """``postgresql+psycopg://user@host:port`` of an admin URL (no database)."""
    return admin_url.rsplit("/", 1)[0]


def create_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def cut_connections(admin_url: str, database: str) -> int:
    """pg_terminate_backend every session on ``database`` (only that database: the server is shared)."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        cut = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        ).scalar_one()
    engine.dispose()
    return int(cut)


class Process:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log = log.open("ab")
        self.popen = subprocess.Popen(
            args, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process and every process under it: its group and its descendants (a
        process worker starts each flow run in a session of its own), all stopped first so none
        can react to another's end — a machine lost at once."""
        tree = [self.popen.pid, *descendants(self.popen.pid)]
        if sig == signal.SIGKILL:
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def freeze(self) -> None:
        """SIGSTOP the process and everything under it (to look at the world while it cannot move)."""
        for pid in [self.popen.pid, *descendants(self.popen.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in [self.popen.pid, *descendants(self.popen.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(self, grace: float = 10.0) -> None:
        tree = [*descendants(self.popen.pid)]  # before they are orphaned by the leader's exit
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        self.kill(signal.SIGKILL)  # stragglers of the group, even when the leader has exited
        for pid in tree:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._log.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pid_alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Cluster:
    """Prefect server on PostgreSQL + pool + limits + deployments + workers, for one test module
    or one benchmark run. ``outreach_env`` is what every worker (and its flow runs) gets."""

    def __init__(
        self,
        workdir: Path,
        admin_url: str,
        outreach_env: dict[str, str],
        *,
        pool: str = "outreach",
        limits: dict[str, tuple[int, float]] | None = None,
        tag: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.admin_url = admin_url
        self.outreach_env = outreach_env
        self.pool = pool
        self.limits = limits or {}
        self.db_name = f"prefect_it_{tag or os.getpid()}"
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.home = workdir / "prefect-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.server: Process | None = None
        self.workers: dict[str, Process] = {}
        self.http = httpx.Client(base_url=self.api, timeout=30)

    # -- environment ----------------------------------------------------------------------------

    def prefect_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OUTREACH_", "TWILIO_"))}
        env.pop("SENDGRID_API_KEY", None)
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED="false",
            PYTHONPATH=python_path(REPO),  # this checkout's code, before any installed copy
            OUTREACH_HOME=str(REPO),
            **shift_env(),  # make test-future: the cluster travels with the suite
        )
        env.update(extra)
        return env

    # -- server ---------------------------------------------------------------------------------

    def start_server(self, timeout: float = 90.0) -> None:
        create_database(self.admin_url, self.db_name)
        url = pg_base(self.admin_url).replace("+psycopg", "+asyncpg") + f"/{self.db_name}"
        env = self.prefect_env(
            PREFECT_SERVER_DATABASE_CONNECTION_URL=url,
            PREFECT_SERVER_LOGGING_LEVEL="WARNING",
            # runs are started by the test or the benchmark, never by the daily cron
            PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
        )
        env.pop("PREFECT_API_URL")
        self.server = Process(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env,
            self.workdir / "server.log",
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.server.alive():
                raise ClusterError(f"Prefect server exited:\n{self.server.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise ClusterError(f"Prefect server not healthy after {timeout:.0f}s:\n{self.server.tail()}")

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.Popen:
        """Start a ``prefect`` CLI command against this server (returns at once; see ``wait_all``)."""
        log = (self.workdir / "cli.log").open("ab")
        return subprocess.Popen(
            [str(BIN / "prefect"), "--no-prompt", *args],
            env=self.prefect_env(),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_all(self, procs: Iterable[subprocess.Popen], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                code = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise ClusterError(f"prefect {proc.args[2:]} did not finish in time") from None
            if code != 0:
                tail = (self.workdir / "cli.log").read_text(errors="replace")[-3000:]
                raise ClusterError(f"prefect {proc.args[2:]} failed ({code}):\n{tail}")

    def setup(self, workers: dict[str, int] | None = None) -> None:
        """The production setup (docs/production.md): the pool, then at once `prefect deploy --all`,
        the rate limits, the automation and the workers (``{name: flow-run slots}``). Only deploy
        and the workers go through the CLI; the rest are the same API calls the CLI makes (each
        CLI process costs seconds of CPU on a small machine)."""
        self.create_pool()
        deploy = self.cli("deploy", "--all")
        for name, limit in (workers or {}).items():
            self.start_worker(name, limit)
        for channel, (burst, rate) in self.limits.items():
            self.create_limit(f"outreach-{channel}", burst, rate)
        self.create_automations(REPO / "deploy" / "automations.yaml")
        self.wait_all([deploy])
        if workers:
            self.wait_workers_online(workers)

    def create_pool(self) -> None:
        """What `prefect work-pool create NAME --type process` and the queue command below do."""
        from prefect.workers.process import ProcessWorker

        body = {
            "name": self.pool,
            "type": "process",
            "base_job_template": ProcessWorker.get_default_base_job_template(),
        }
        self.http.post("/work_pools/", json=body).raise_for_status()
        # `prefect work-queue create serial --pool outreach --limit 1`: daily and dispatch-due in turn
        queue = {"name": "serial", "concurrency_limit": 1}
        self.http.post(f"/work_pools/{self.pool}/queues", json=queue).raise_for_status()

    def create_limit(self, name: str, burst: int, rate: float) -> None:
        """What `prefect gcl create NAME --limit BURST --slot-decay-per-second RATE` does."""
        body = {"name": name, "limit": burst, "slot_decay_per_second": rate, "active": True}
        self.http.post("/v2/concurrency_limits/", json=body).raise_for_status()

    def create_automations(self, path: Path) -> None:
        """What `prefect automation create --from-file PATH` does (the file checked by Prefect's model)."""
        import yaml
        from prefect.events.schemas.automations import AutomationCore

        for item in yaml.safe_load(path.read_text())["automations"]:
            body = AutomationCore.model_validate(item).model_dump(mode="json")
            self.http.post("/automations/", json=body).raise_for_status()

    # -- workers --------------------------------------------------------------------------------

    def start_worker(self, name: str, limit: int = 2, **extra_env: str) -> Process:
        env = self.prefect_env(
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_LOGGING_LEVEL="INFO",
            OUTREACH_WORKER_NAME=name,
            **self.outreach_env,
            **extra_env,
        )
        worker = Process(
            name,
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                self.pool,
                "--name",
                name,
                "--type",
                "process",
                "--limit",
                str(limit),
            ],  # fmt: skip
            env,
            self.workdir / f"worker-{name}.log",
        )
        self.workers[name] = worker
        return worker

    def wait_workers_online(self, names: Iterable[str], timeout: float = 60.0) -> None:
        names = set(names)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.http.post(f"/work_pools/{self.pool}/workers/filter", json={}).json()
            online = {w["name"] for w in rows if w.get("status") == "ONLINE"}
            if names <= online:
                return
            for name in names:
                if not self.workers[name].alive():
                    raise ClusterError(f"worker {name} exited:\n{self.workers[name].tail()}")
            time.sleep(0.5)
        raise ClusterError(f"workers {names} not online after {timeout:.0f}s")

    # -- runs -----------------------------------------------------------------------------------

    def deployment_id(self, flow: str, deployment: str) -> str:
        response = self.http.get(f"/deployments/name/{flow}/{deployment}")
        response.raise_for_status()
        return response.json()["id"]

    def run_deployment(self, flow: str, deployment: str, **parameters: Any) -> str:
        response = self.http.post(
            f"/deployments/{self.deployment_id(flow, deployment)}/create_flow_run",
            json={"parameters": parameters},
        )
        response.raise_for_status()
        return response.json()["id"]

    def flow_run(self, run_id: str) -> dict:
        response = self.http.get(f"/flow_runs/{run_id}")
        response.raise_for_status()
        return response.json()

    def state(self, run_id: str) -> str:
        state = self.flow_run(run_id).get("state") or {}
        return state.get("type") or "PENDING"

    def wait_run(self, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(run_id)
            if state in FINAL:
                return state
            time.sleep(0.5)
        raise ClusterError(
            f"flow run {run_id} not finished after {timeout:.0f}s (state {self.state(run_id)})"
        )

    def flow_runs(self, **flow_run_filter: Any) -> list[dict]:
        rows: list[dict] = []
        offset = 0
        while True:
            body = {"flow_runs": flow_run_filter, "limit": 200, "offset": offset, "sort": "START_TIME_ASC"}
            page = self.http.post("/flow_runs/filter", json=body).json()
            rows += page
            if len(page) < 200:
                return rows
            offset += 200

    def children(self, parent_id: str) -> list[dict]:
        """Flow runs started from inside ``parent_id``, at any depth (subflows and run_deployment
        link them to the parent by a task run)."""
        found: list[dict] = []
        todo = [parent_id]
        while todo:
            links = [t["id"] for t in self.task_runs(todo)]
            todo = []
            if links:
                below = self.flow_runs(parent_task_run_id={"any_": links})
                found += below
                todo = [run["id"] for run in below]
        return found

    def task_runs(self, flow_run_ids: list[str]) -> list[dict]:
        rows: list[dict] = []
        offset = 0
        while True:
            body = {"flow_runs": {"id": {"any_": flow_run_ids}}, "limit": 200, "offset": offset}
            page = self.http.post("/task_runs/filter", json=body).json()
            rows += page
            if len(page) < 200:
                return rows
            offset += 200

    def crash_orphans(self, message: str) -> list[str]:
        """Mark CRASHED every unfinished flow run whose process is gone: what the automation in
        deploy/automations.yaml does once heartbeats stop (heartbeats are >= 30 s apart, too slow
        for a test). Returns the ids it marked."""
        marked = []
        for run in self.flow_runs(state={"type": {"any_": ["PENDING", "RUNNING"]}}):
            infra = run.get("infrastructure_pid") or ""
            pid = int(infra.rsplit(":", 1)[-1]) if infra.rsplit(":", 1)[-1].isdigit() else None
            if pid is not None and not pid_alive(pid):
                self.http.post(
                    f"/flow_runs/{run['id']}/set_state",
                    json={"state": {"type": "CRASHED", "message": message}, "force": False},
                ).raise_for_status()
                marked.append(run["id"])
        return marked

    def wait_quiet(self, timeout: float) -> None:
        """Until no flow run is pending or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.flow_runs(state={"type": {"any_": ["PENDING", "RUNNING", "SCHEDULED"]}}):
                return
            time.sleep(0.5)
        raise ClusterError(f"flow runs still active after {timeout:.0f}s")

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop(grace=5)
        if self.server:
            self.server.stop(grace=10)
        self.http.close()
        drop_database(self.admin_url, self.db_name)


def window_excess(events: list[tuple[float, int]], burst: float, rate: float, window: float, slack: float):
    """The worst window of ``window`` seconds against a token bucket of ``burst`` at ``rate``/s:
    returns (count in that window, allowed, window start). Allowed = burst + rate * (window +
    slack); slack covers the time between taking slots and the requests reaching the server."""
    events = sorted(events)
    worst = (0, burst + rate * (window + slack), events[0][0] if events else 0.0)
    total, j = 0, 0
    for i, (start, _) in enumerate(events):
        while j < len(events) and events[j][0] < start + window:
            total += events[j][1]
            j += 1
        if total > worst[0]:
            worst = (total, worst[1], start)
        total -= events[i][1]
    return worst
