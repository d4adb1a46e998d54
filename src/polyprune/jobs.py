"""Running a Snakemake script: log file, threads, settings, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from contextlib import contextmanager, redirect_stderr, redirect_stdout

from polyprune.cost import report_cost
from polyprune.errors import PolypruneError


def exit_on_sigterm() -> None:
    """End with SystemExit on SIGTERM (Snakemake, Slurm, torchrun stopping a job), so that
    `finally` blocks run and no temporary output is left behind."""
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))


@contextmanager
def job(snakemake):
    """Run the body with the job's log as stdout/stderr and torch (if the script imported it)
    on the job's threads; yield the step's settings (the `settings` param). Bad input ends the
    job with one line on stderr; anything else with its traceback (in the log and on stderr).
    A job that succeeds ends the process at once: every output is written and closed by then,
    and the interpreter's teardown would add about 0.5 s to every job that imported torch."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(snakemake.threads)
    settings = json.loads(snakemake.params.get("settings", "{}"))
    exit_on_sigterm()
    with (
        open(snakemake.log[0], "w") as log,
        redirect_stdout(log),
        redirect_stderr(log),
        report_cost(log),
    ):
        try:
            yield settings
        except PolypruneError as e:
            print(f"polyprune: {e}", file=log)
            print(f"polyprune: {e}", file=sys.__stderr__)
            sys.exit(1)
        except Exception:
            traceback.print_exc(file=log)
            raise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
