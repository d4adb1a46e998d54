"""What a run's jobs cost: each job's log ends with its wall time and the share of it spent
starting up (interpreter, imports) before its work began; `polyprune cost LOG_DIR` sums them
per rule."""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

COST = re.compile(r"^polyprune: cost ([0-9.]+) s, start-up ([0-9.]+) s$", re.MULTILINE)


def process_age() -> float:
    """Seconds since this process started (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


@contextmanager
def report_cost(out):
    """Write the block's cost line to `out` when it ends: process age at the end, and at the
    start (the start-up)."""
    startup, began = process_age(), time.monotonic()
    try:
        yield
    finally:
        total = startup + time.monotonic() - began
        print(f"polyprune: cost {total:.2f} s, start-up {startup:.2f} s", file=out, flush=True)


def rule_of(log: Path, log_dir: Path) -> str:
    """logs/<run>/<rule>/... or logs/<run>/<rule>.log"""
    parts = log.relative_to(log_dir).parts
    return parts[0] if len(parts) > 1 else log.stem


def job_costs(log_dir: str | Path) -> list[dict]:
    """Per rule of a finished run: jobs, total and mean job-seconds, start-up share; the rules
    by total cost, then one row `all`."""
    log_dir = Path(log_dir)
    costs: dict[str, list[tuple[float, float]]] = {}
    for log in sorted(log_dir.rglob("*.log")):
        found = COST.findall(log.read_text(errors="replace"))
        if found:
            total, startup = map(float, found[-1])
            costs.setdefault(rule_of(log, log_dir), []).append((total, startup))
    if not costs:
        from polyprune.errors import DataError

        raise DataError(f"{log_dir}: no job log with a cost line (a finished run's logs/<run>)")
    rows = [_row(rule, jobs) for rule, jobs in costs.items()]
    rows.sort(key=lambda r: -r["job_seconds"])
    return [*rows, _row("all", [job for jobs in costs.values() for job in jobs])]


def _row(rule: str, jobs: list[tuple[float, float]]) -> dict:
    total = sum(t for t, _ in jobs)
    return {
        "rule": rule,
        "jobs": len(jobs),
        "job_seconds": round(total, 1),
        "mean_seconds": round(total / len(jobs), 2),
        "startup_share": round(sum(s for _, s in jobs) / total, 3) if total else 0.0,
    }


def cost_table(rows: list[dict]) -> str:
    header = f"{'rule':<16}{'jobs':>6}{'job-s':>10}{'mean s':>9}{'start-up':>10}"
    lines = [
        f"{r['rule']:<16}{r['jobs']:>6}{r['job_seconds']:>10.1f}{r['mean_seconds']:>9.2f}"
        f"{r['startup_share']:>10.1%}"
        for r in rows
    ]
    return "\n".join([header, *lines])
