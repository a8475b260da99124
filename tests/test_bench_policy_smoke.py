"""The policy benchmark script runs end to end on a tiny size and the engine agrees with the naive version."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_policy_smoke(tmp_path):
    out = tmp_path / "policy.md"
    done = subprocess.run(
        [
            sys.executable,
            "bench/bench_policy.py",
            "--sizes",
            "10000",
            "--backends",
            "sqlite",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert "| sqlite | 10,000 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| sqlite | 10,000 |"))
    assert row.rstrip().endswith("| yes |")  # identical decisions from both implementations
