"""What the browser's skin meter gains: the live app's own trace with and without the meter's restoration.

    SMARTMIRROR_VITALS_DEBUG=/tmp/live.jsonl <run the app on the browser webcam, START, wait>
    .venv/bin/python benchmarks/skin_meter.py /tmp/live.jsonl [more traces] --truth-bpm 71.1 [--json]

The vitals' debug trace (one JSON line per frame) holds both colours of every frame the live vitals measured:
``rgb_here``, the skin ROI on the picture as it arrived over WebRTC (VP8), and ``rgb``, the same ROI with what the
encoder took restored from the meter's raw-frame measurement (:func:`smartmirror.vitals.analyzer.with_raw_colour`).
The same frames, the same landmarks, the same run: the difference is the meter alone. Printed per trace and path:
median SNR at the true rate (dB), share of 10 s windows within 3 bpm, and the whole-trace heart rate (as in
``benchmarks/browser_pulse.py``), plus the share of frames the meter gave a colour.

Measured (2026-12-02, Chromium 150, 2 shared cores, the browser test's fake camera: PhysRecorder v01 at 15
frames/s, oximeter 71.1 bpm): see README "Live pulse".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_pulse import pulse_metrics  # noqa: E402

from smartmirror.vitals.pipeline import VitalsTrace  # noqa: E402


def traces(path: Path) -> tuple[VitalsTrace, VitalsTrace, float]:
    """(with the meter, encoded only) from one debug file, and the share of face frames with a meter colour."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frames = [r for r in rows if "t" in r and "rgb_here" in r]
    if not frames:
        raise SystemExit(f"{path}: no frame records with 'rgb_here' (was SMARTMIRROR_VITALS_DEBUG set?)")
    times = np.array([r["t"] for r in frames], dtype=float)
    ones = np.ones(len(frames))

    def trace(key: str) -> VitalsTrace:
        return VitalsTrace(times, np.array([r[key] for r in frames], dtype=float), ones, ones, np.zeros(len(frames)))

    metered = trace("rgb")
    share = float(np.all(np.isfinite(metered.rgb), axis=1).mean())
    return metered, trace("rgb_here"), share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", nargs="+", type=Path)
    parser.add_argument("--truth-bpm", type=float, required=True)
    parser.add_argument("--method", default="pos")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = []
    for path in args.traces:
        metered, encoded, share = traces(path)
        results.append({"trace": str(path), "meter_share": round(share, 3),
                        "with_meter": pulse_metrics(metered, args.truth_bpm, args.method),
                        "encoded_only": pulse_metrics(encoded, args.truth_bpm, args.method)})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'trace':28s} {'path':12s} {'SNR dB':>7s} {'<=3 bpm':>8s} {'clip HR':>8s}  meter colour")
    for result in results:
        for path in ("with_meter", "encoded_only"):
            m = result[path]
            print(f"{Path(result['trace']).name:28s} {path:12s} {m['snr_db_median']:7.2f} {m['within_3_bpm']:8.2f} "
                  f"{m['clip_hr_bpm']!s:>8s}  {result['meter_share']:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
