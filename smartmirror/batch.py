"""Many clips, one task each: in this process, on a local Dask cluster, or on a running one.

:func:`run_clips` maps a per-clip function over a list of items and yields ``(index, outcome)`` as each clip
finishes (a rich progress bar on stderr counts them). Where it runs is a :class:`ClusterOptions`:

- neither ``workers`` nor ``scheduler``: one clip after another in this process;
- ``workers=N``: a ``distributed.LocalCluster`` of N worker processes (one thread each) on 127.0.0.1;
- ``scheduler="tcp://host:8786"``: an existing cluster (``dask scheduler`` / ``dask worker`` on other machines).

The per-clip function must be importable by the workers (SmartMirror installed there) and must not raise for a
bad clip: it returns that clip's error. What still goes wrong on a worker (an exception, or the worker process
dying: killed, out of memory) is retried on another worker up to ``retries`` times; after that the clip's outcome
is a :class:`TaskFailure` with a ``code`` and ``message`` and the other clips carry on. Finished results are
streamed back and released one by one, so a worker that dies later loses nothing already done.

Models are loaded once per worker process: :class:`WarmModels` (a worker plugin) loads the networks the run
needs when a worker starts, into the module-level caches the analyzers read, so tasks reuse them.

Clips are opened by the workers from a path they can see (:mod:`smartmirror.clip_jobs`): the client sends only
the names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from smartmirror.errors import CodedError

log = logging.getLogger(__name__)

#: How often a clip is tried again after its task raised or its worker died, before it is reported as failed.
DEFAULT_RETRIES = 2
#: Seconds to wait for an existing scheduler to answer.
CONNECT_TIMEOUT_S = 10.0


class BatchError(CodedError):
    """Inputs or a cluster that cannot be used; ``code`` is machine-readable."""


@dataclass(frozen=True)
class TaskFailure:
    """A clip whose task failed on every try (its worker died, or it raised an unexpected error)."""

    code: str
    message: str

    def error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class ClusterOptions:
    """Where the clips run: in-process (default), ``workers`` local processes, or an existing ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None
    retries: int = DEFAULT_RETRIES

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise BatchError("invalid_argument", "give either --workers or --scheduler, not both")
        if self.workers is not None and self.workers < 1:
            raise BatchError("invalid_argument", f"--workers must be at least 1, got {self.workers}")
        if self.retries < 0:
            raise BatchError("invalid_argument", f"--retries must be 0 or more, got {self.retries}")

    @property
    def distributed(self) -> bool:
        return self.workers is not None or self.scheduler is not None


def warm_models(methods: Iterable[str] = (), sections: Iterable[str] = ()) -> list[str]:
    """Load the models a run needs into this process's caches (FaceMesh's graph, learned pulse networks,
    the emotion network); returns what was loaded. Safe to call again: cached models are not reloaded."""
    import numpy as np

    from smartmirror.face import FaceTracker
    from smartmirror.vitals.methods import get_method

    loaded = ["facemesh"]
    with FaceTracker(static_image_mode=False) as tracker:  # builds the MediaPipe graphs once (files cached by OS)
        tracker.process(np.zeros((64, 64, 3), np.uint8))
    for name in methods:
        spec = get_method(name)
        if spec.kind == "frames":
            from smartmirror.vitals import neural

            if name in neural.PRETRAINED:  # the network the clips run: its ONNX session, else the PyTorch port
                _ = neural.load_onnx(name) if neural.has_onnx(name) else neural.load_pretrained(name)
                loaded.append(name)
    if "emotion" in set(sections):
        try:
            from smartmirror.emotion import EmotionAnalyzer

            EmotionAnalyzer().predictor.load()  # the shared network (ONNX session, or torch's traced nets)
            loaded.append("emotion")
        except Exception as exc:  # the report runs without the section, as in-process
            log.warning("emotion model unavailable on this worker: %s", exc)
    return loaded


class WarmModels(WorkerPlugin):
    """Dask worker plugin: :func:`warm_models` once when each worker process starts (and after a restart)."""

    name = "smartmirror-warm-models"

    def __init__(self, methods: Iterable[str] = (), sections: Iterable[str] = ()):
        self.methods = tuple(methods)
        self.sections = tuple(sections)

    def setup(self, worker: Any) -> None:
        worker.smartmirror_models = warm_models(self.methods, self.sections)


@contextlib.contextmanager
def one_numeric_thread() -> Iterator[None]:
    """BLAS, OpenMP and PyTorch on one thread while a clip runs.

    Sums split over several threads round differently, so a clip's numbers would depend on where it ran; one
    thread per clip gives the same numbers in-process and on any worker (Dask's workers start with one thread
    per library, and parallelism comes from running clips side by side).
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        if torch is not None and before:
            torch.set_num_threads(before)


def run_one(fn: Callable[[Any], Any], item: Any) -> Any:
    """One clip's task: ``fn(item)`` under :func:`one_numeric_thread` (the same call in-process and on workers)."""
    with one_numeric_thread():
        return fn(item)


def _quiet_dask_logs() -> None:
    """Dask's INFO chatter (nannies, scheduler) off stderr unless SMARTMIRROR_LOG asks for INFO or DEBUG."""
    wanted = logging.getLevelName(os.environ.get("SMARTMIRROR_LOG", "WARNING").upper())
    if not isinstance(wanted, int) or wanted > logging.INFO:
        logging.getLogger("distributed").setLevel(logging.WARNING)


def local_cluster(workers: int, retries: int = DEFAULT_RETRIES) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes, one thread each, on 127.0.0.1 (no dashboard).

    A task whose worker died runs again elsewhere up to ``retries`` times (the scheduler's allowed failures).
    Dask's default ``MALLOC_TRIM_THRESHOLD_`` for workers is left out: it also switches off glibc's adaptive
    mmap threshold, so every 640x480 frame buffer becomes a fresh mmap (+1.4 s of system time per 30 s clip,
    measured); the nanny's copy of it in this process's environment is undone too.
    """
    import dask
    from distributed import LocalCluster

    settings = {"distributed.scheduler.allowed-failures": retries,
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    try:
        with dask.config.set(settings):
            return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                silence_logs=logging.ERROR,
                                # the scheduler's HTTP routes on a free loopback port, no dashboard
                                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    finally:
        if saved is None:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        else:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved


@contextlib.contextmanager
def dask_client(options: ClusterOptions) -> Iterator[Any]:
    """A ``distributed.Client`` on a fresh :func:`local_cluster` (``options.workers``) or on
    ``options.scheduler``.

    Raises
    ------
    BatchError
        ``cluster_unavailable`` when the scheduler cannot be reached or the cluster does not start.
    """
    from distributed import Client

    _quiet_dask_logs()
    cluster = None
    try:
        if options.scheduler is not None:
            client = Client(options.scheduler, timeout=CONNECT_TIMEOUT_S)
        else:
            cluster = local_cluster(options.workers, options.retries)
            client = Client(cluster)
    except (OSError, TimeoutError, RuntimeError) as exc:
        if cluster is not None:
            cluster.close()
        where = options.scheduler or f"a local cluster of {options.workers} workers"
        raise BatchError("cluster_unavailable", f"Cannot reach {where}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _progress(label: str, total: int) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    return progress, progress.add_task(label, total=total)


def _failure(exc: BaseException) -> TaskFailure:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return TaskFailure("worker_died", "The worker process died on every try of this clip (killed, or out of "
                                          f"memory): {exc}")
    return TaskFailure("internal_error", f"{type(exc).__name__}: {exc}")


def run_clips(
    fn: Callable[[Any], Any],
    items: list[Any],
    options: ClusterOptions | None = None,
    *,
    label: str = "clips",
    names: list[str] | None = None,
    warm: WarmModels | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(items[index]))`` as each clip finishes; a :class:`TaskFailure` instead of a result
    when its task failed on every try (the run goes on).

    ``names`` (one per item) are shown in the progress bar; ``warm`` loads models once per process/worker.

    Raises
    ------
    BatchError
        When the cluster cannot be started or reached.
    """
    options = options or ClusterOptions()
    names = names or [str(i) for i in range(len(items))]
    progress, task = _progress(label, len(items))
    if not options.distributed:
        if warm is not None:
            warm_models(warm.methods, warm.sections)
        with progress:
            for i, item in enumerate(items):
                progress.update(task, description=f"{label}: {names[i]}")
                try:
                    outcome = run_one(fn, item)
                except Exception as exc:  # the same contract as on a worker: one clip never ends the run
                    log.exception("clip %s failed", names[i])
                    outcome = _failure(exc)
                progress.advance(task)
                yield i, outcome
        return
    from distributed import as_completed

    with dask_client(options) as client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise BatchError("cluster_unavailable", f"The cluster at {client.scheduler.address} has no workers "
                                                    f"(none joined within {CONNECT_TIMEOUT_S:.0f} s)") from None
        if warm is not None:
            try:
                client.register_plugin(warm, name=warm.name)
            except Exception as exc:  # e.g. a worker without SmartMirror installed
                raise BatchError("cluster_unavailable", "The workers cannot load SmartMirror's models: "
                                                        f"{type(exc).__name__}: {exc}") from None
        futures = {client.submit(run_one, fn, item, key=f"smartmirror-clip-{i}-{os.urandom(4).hex()}", pure=False,
                                 retries=options.retries): i for i, item in enumerate(items)}
        with progress:
            progress.update(task, description=f"{label} on {len(client.scheduler_info()['workers'])} workers")
            for future in as_completed(futures):
                index = futures.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:
                    outcome = _failure(exc)
                future.release()
                progress.advance(task)
                yield index, outcome
