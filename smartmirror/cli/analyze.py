"""``smartmirror analyze VIDEO...``: the whole report for one clip, or JSON Lines over many (wired in
:mod:`smartmirror.cli.app`). Heavy imports live inside the functions so ``smartmirror --help`` stays fast."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smartmirror.cli.output import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    RetriesOption,
    SchedulerOption,
    WorkersOption,
    cluster_options,
    fail,
    json_default,
    print_json,
)
from smartmirror.errors import error_object

log = logging.getLogger(__name__)

def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"SmartMirror report: {report.get('video', {}).get('name', '')}", show_header=False)
    table.add_column("measure")
    table.add_column("value")
    hrv = report.get("hrv") or {}
    stress = report.get("stress") or {}
    quality = report.get("quality") or {}
    spo2 = report.get("spo2") or {}
    rows = [
        ("Heart rate", _fmt(report.get("heart_rate_bpm"), " bpm")),
        ("  confidence / SNR", f"{_fmt(report.get('heart_rate_confidence'), '', 2)} / "
                               f"{_fmt(report.get('pulse_snr_db'), ' dB')}"),
        ("HRV SDNN / RMSSD", f"{_fmt(hrv.get('sdnn_ms'), ' ms')} / {_fmt(hrv.get('rmssd_ms'), ' ms')}"),
        ("HRV pNN50 / LF/HF", f"{_fmt(hrv.get('pnn50'), ' %')} / {_fmt(hrv.get('lf_hf'), '', 2)}"),
        ("Stress index (Baevsky)", _fmt(hrv.get("stress_index"))),
        ("Respiration", _fmt(report.get("respiration_rate_bpm"), " /min")),
        ("SpO2", _fmt(report.get("spo2_percent"), " %") + (f"  ({spo2.get('label')})" if spo2 else "")),
        ("Stress", f"{stress.get('level', '—')} {_fmt(stress.get('score'))} ({stress.get('basis', '—')})"),
        ("Face in view", _fmt(quality.get("face_detected_ratio"), "", 2)),
        ("Obstruction", _fmt(quality.get("obstruction"), "", 2)),
        ("Liveness", _fmt(quality.get("liveness"))),
        ("Frames / fps", f"{quality.get('frames')} / {_fmt(quality.get('fps'))}"),
    ]
    for section in ("emotion", "fatigue", "identity"):
        value = report.get(section)
        rows.append((section.capitalize(), "—" if value is None else json.dumps(value, default=json_default)[:80]))
    rows.append(("Time", f"{_fmt(report.get('timings_s', {}).get('total'), ' s', 2)}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if quality.get("message"):
        console.print(f"[yellow]{quality['message']}[/yellow]")
    console.print("[dim]A wellness demo, not a medical device.[/dim]")


def analyze(
    videos: Annotated[list[str], typer.Argument(help="The video file to analyse; or several files, folders, "
                                                     "globs ('clips/*.mp4') or fsspec URLs: one JSON line each.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")] = False,
    method: Annotated[str | None, typer.Option(help="Pulse method: pos, chrom, green, ica, or a learned one.")] = None,
    identity: Annotated[bool, typer.Option(help="Also estimate age and gender (opt-in).")] = False,
    sections: Annotated[str, typer.Option(help="Optional sections to run, comma-separated (emotion,fatigue; "
                                               "empty for vitals only).")] = "emotion,fatigue",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the JSON Lines to this file "
                                                                       "instead of stdout.")] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    retries: RetriesOption = 2,
    landmarks_every: Annotated[int | None, typer.Option(
        "--landmarks-every", help="Vitals only: FaceMesh on every N-th frame, the landmarks interpolated "
                                         "between. Faster but less safe: blinks can be missed, and a photo's "
                                         "encoder flicker can pass for a pulse (README, clip report).")] = None,
) -> None:
    """The whole report for one clip: vitals, emotion, fatigue (and identity when asked).

    Over many clips (several files, a folder, a glob, ``--workers``/``--scheduler`` or ``--output``) it writes
    JSON Lines: one object per clip as it finishes, ``{"clip": ..., <report>}`` or ``{"clip": ..., "error": ...}``,
    and exits non-zero only when every clip failed.
    """
    import glob

    from smartmirror.frames import VideoError
    from smartmirror.report import analyze_video

    if landmarks_every is not None and landmarks_every < 1:
        fail(error_object("invalid_argument", f"--landmarks-every must be at least 1, got {landmarks_every}"),
             json_out, EXIT_BAD_INPUT)
    chosen = tuple(part.strip() for part in sections.split(",") if part.strip())
    one_file = len(videos) == 1 and "://" not in videos[0] and not glob.has_magic(videos[0]) \
        and not Path(videos[0]).is_dir()
    if not one_file or workers is not None or scheduler is not None or output is not None:
        _analyze_many(videos, method=method, identity=identity, sections=chosen, output=output,
                      cluster_args=(workers, scheduler, retries), landmarks_every=landmarks_every)
        return
    try:
        report = analyze_video(Path(videos[0]), method=method, identity=identity, sections=chosen,
                               landmarks_every=landmarks_every)
    except VideoError as exc:
        fail(error_object(exc.code, exc.message), json_out, EXIT_BAD_INPUT)
    except Exception as exc:  # one JSON object, never a traceback
        log.exception("analyze failed")
        fail(error_object("internal_error", f"{exc.__class__.__name__}: {exc}"), json_out, EXIT_INTERNAL)
    if json_out:
        print_json(report)
    else:
        _print_report(report)


def _analyze_many(videos: list[str], *, method: str | None, identity: bool, sections: tuple[str, ...],
                  output: Path | None, cluster_args: tuple, landmarks_every: int | None = None) -> None:
    """``analyze`` over many clips: JSON Lines in the order the clips finish, flushed line by line."""
    from smartmirror.batch import BatchError, TaskFailure, WarmModels, run_clips
    from smartmirror.clip_jobs import AnalyzeJob, absolute, analyze_clip, expand_clips
    from smartmirror.report import DEFAULT_SECTIONS
    from smartmirror.vitals.methods import get_method
    from smartmirror.vitals.rppg import DEFAULT_METHOD

    try:
        cluster = cluster_options(*cluster_args)
        get_method(method or DEFAULT_METHOD)  # the method and sections are checked once, before any work
        unknown = set(sections) - set(DEFAULT_SECTIONS)
        if unknown:
            raise BatchError("invalid_sections",
                             f"unknown report sections {sorted(unknown)}; choose from {list(DEFAULT_SECTIONS)}")
        clips = [absolute(name) for name in expand_clips(videos)]
    except BatchError as exc:
        fail(error_object(exc.code, exc.message), True, EXIT_BAD_INPUT)
    except ValueError as exc:
        fail(error_object("invalid_method", str(exc)), True, EXIT_BAD_INPUT)
    jobs = [AnalyzeJob(clip, method=method, identity=identity, sections=sections, landmarks_every=landmarks_every)
            for clip in clips]
    warm = WarmModels([method or DEFAULT_METHOD], sections)
    failed = 0
    try:
        out = open(output, "w", encoding="utf-8") if output is not None else sys.stdout
    except OSError as exc:
        fail(error_object("cannot_write", f"Cannot write {output}: {exc.strerror or exc}"), True, EXIT_BAD_INPUT)
    try:
        for index, line in run_clips(analyze_clip, jobs, cluster, label="analyze", names=[Path(c).name for c in clips],
                                     warm=warm):
            if isinstance(line, TaskFailure):
                line = {"clip": clips[index], "error": line.error()}
            failed += "error" in line
            out.write(json.dumps(line, allow_nan=False, default=json_default) + "\n")
            out.flush()
    except BatchError as exc:
        fail(error_object(exc.code, exc.message), True, EXIT_BAD_INPUT)
    except Exception as exc:
        log.exception("analyze failed")
        fail(error_object("internal_error", f"{exc.__class__.__name__}: {exc}"), True, EXIT_INTERNAL)
    finally:
        if output is not None:
            out.close()
    if failed == len(clips):
        typer.echo(f"error: every one of the {len(clips)} clips failed", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)


