"""What every ``smartmirror`` command prints and how it exits: one JSON object on stdout with ``--json`` (logs on
stderr), ``{"error": {"code", "message"}}`` on failure, and the cluster options the batch commands share."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

#: Exit status for a video or dataset that could not be analysed.
EXIT_BAD_INPUT = 2
#: Exit status for an unexpected internal failure (still reported as one JSON object).
EXIT_INTERNAL = 3


def print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, allow_nan=False, default=json_default) + "\n")
    sys.stdout.flush()


def json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", help="Run the clips on a local Dask cluster of this many worker processes "
                 "(default: one after another in this process)."),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="Run the clips on a running Dask cluster, e.g. tcp://10.0.0.5:8786; the "
                 "workers read the clips from the same path or URL."),
]
RetriesOption = Annotated[
    int, typer.Option(help="Tries again for a clip whose worker died or whose task failed, before it is "
                      "reported as failed.")
]


def cluster_options(workers: int | None, scheduler: str | None, retries: int) -> Any:
    from smartmirror.batch import ClusterOptions

    return ClusterOptions(workers=workers, scheduler=scheduler, retries=retries)


def fail(payload: dict[str, Any], json_out: bool, status: int) -> NoReturn:
    if json_out:
        print_json(payload)
    else:
        typer.echo(f"error ({payload['error']['code']}): {payload['error']['message']}", err=True)
    raise typer.Exit(status)
