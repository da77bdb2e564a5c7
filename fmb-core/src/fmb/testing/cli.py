"""Run the ``fmb`` command line in-process, for tests of FMB and of its plugins.

One owner for "invoke the CLI and check its exit code" and for the baseline run most tests start from,
so that a change of the run command's options is made once.
"""

from __future__ import annotations

from typing import Any


def fmb_cli(*args: Any, code: int | None = 0, catch_exceptions: bool = True):
    """Invoke ``fmb *args`` in-process with click's ``CliRunner``.

    Each argument is passed through ``str`` (paths, numbers). When *code* is not ``None`` the exit code must equal it,
    else ``AssertionError`` carries the command's output. Returns the ``click.testing.Result``.
    """
    from click.testing import CliRunner

    from fmb.cli import cli

    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=catch_exceptions)
    if code is not None:
        assert r.exit_code == code, f"exit {r.exit_code} (expected {code}): {r.output}"
    return r


def fmb_run(
    output: Any,
    *extra: Any,
    model: str = "baseline",
    detector: str = "iforest",
    dataset: str = "toy:size=120",
    code: int | None = 0,
):
    """``fmb run --model MODEL --detector DETECTOR --dataset DATASET --output OUTPUT -q *extra``; see `fmb_cli`."""
    return fmb_cli(
        "run",
        "--model",
        model,
        "--detector",
        detector,
        "--dataset",
        dataset,
        "--output",
        output,
        "-q",
        *extra,
        code=code,
    )
