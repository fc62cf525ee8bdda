"""CLI bodies for ``smartmirror analyze`` and ``smartmirror eval`` (wired in :mod:`smartmirror.cli`).

Heavy imports live inside the functions so ``smartmirror --help`` stays fast. With ``--json`` each command
prints exactly one JSON object on stdout (logs go to stderr) and exits non-zero on failure, with
``{"error": {"code", "message"}}`` as that object.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

log = logging.getLogger(__name__)

#: Exit status for a video or dataset that could not be analysed.
EXIT_BAD_INPUT = 2
#: Exit status for an unexpected internal failure (still reported as one JSON object).
EXIT_INTERNAL = 3


def _print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, allow_nan=False, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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
        rows.append((section.capitalize(), "—" if value is None else json.dumps(value, default=_json_default)[:80]))
    rows.append(("Time", f"{_fmt(report.get('timings_s', {}).get('total'), ' s', 2)}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if quality.get("message"):
        console.print(f"[yellow]{quality['message']}[/yellow]")
    console.print("[dim]A wellness demo, not a medical device.[/dim]")


def analyze(
    video: Annotated[Path, typer.Argument(help="The video file to analyse.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")] = False,
    method: Annotated[str | None, typer.Option(help="Pulse method: pos, chrom, green, ica, or a learned one.")] = None,
    identity: Annotated[bool, typer.Option(help="Also estimate age and gender (opt-in).")] = False,
    sections: Annotated[str, typer.Option(help="Optional sections to run, comma-separated (emotion,fatigue; "
                                               "empty for vitals only).")] = "emotion,fatigue",
) -> None:
    """The whole report for one clip: vitals, emotion, fatigue (and identity when asked)."""
    from smartmirror.frames import VideoError
    from smartmirror.report import analyze_video, error_object

    chosen = tuple(part.strip() for part in sections.split(",") if part.strip())
    try:
        report = analyze_video(video, method=method, identity=identity, sections=chosen)
    except VideoError as exc:
        _fail(error_object(exc.code, exc.message), json_out, EXIT_BAD_INPUT)
    except Exception as exc:  # one JSON object, never a traceback
        log.exception("analyze failed")
        _fail(error_object("internal_error", f"{exc.__class__.__name__}: {exc}"), json_out, EXIT_INTERNAL)
    if json_out:
        _print_json(report)
    else:
        _print_report(report)


def _fail(payload: dict[str, Any], json_out: bool, status: int) -> NoReturn:
    if json_out:
        _print_json(payload)
    else:
        typer.echo(f"error ({payload['error']['code']}): {payload['error']['message']}", err=True)
    raise typer.Exit(status)


def eval_dataset(
    dataset_dir: Annotated[Path, typer.Argument(help="A folder in the UBFC-rPPG or seed-001 layout.")],
    method: Annotated[
        str | None,
        typer.Option(help="Pulse method (default: the measured best); several as 'pos,ica,me-pure', or 'all', "
                     "to compare learned and unsupervised methods side by side."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")] = False,
) -> None:
    """Heart-rate and pulse accuracy over a folder of clips with ground truth: per file and mean MAE/RMSE."""
    from smartmirror.dataset import DatasetError, compare_methods, evaluate_dataset
    from smartmirror.report import error_object
    from smartmirror.vitals.methods import get_method, list_methods

    try:
        if method is not None and ("," in method or method.strip().lower() == "all"):
            names = list_methods() if method.strip().lower() == "all" else [m.strip() for m in method.split(",")]
            for name in names:
                get_method(name)  # ValueError naming the valid methods, before any work
            result = compare_methods(dataset_dir, names, show=not json_out)
        else:
            result = evaluate_dataset(dataset_dir, method=method, show=not json_out)
    except DatasetError as exc:
        _fail(error_object(exc.code, exc.message), json_out, EXIT_BAD_INPUT)
    except ValueError as exc:
        _fail(error_object("invalid_argument", str(exc)), json_out, EXIT_BAD_INPUT)
    except Exception as exc:
        log.exception("eval failed")
        _fail(error_object("internal_error", f"{exc.__class__.__name__}: {exc}"), json_out, EXIT_INTERNAL)
    if json_out:
        _print_json(result)
