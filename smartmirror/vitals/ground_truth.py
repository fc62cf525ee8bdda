"""Datasets of face videos with pulse ground truth: the two layouts, and ground-truth files read with repair.

Two layouts are understood:

- UBFC-rPPG: ``<root>/<subject>/vid.avi`` with ``ground_truth.txt`` (line 1 PPG, line 2 heart rate, line 3
  times in seconds) or DATASET_1's ``gtdump.xmp`` (CSV: time ms, heart rate, SpO2, PPG);
- the flat clip + .txt layout: ``<root>/<name>.avi`` with ``<root>/<name>.txt`` (the same three lines; the heart-rate
  line may be empty).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartmirror.errors import CodedError
from smartmirror.frames import VIDEO_SUFFIXES

log = logging.getLogger(__name__)


class DatasetError(CodedError):
    """A dataset folder that cannot be evaluated; ``code`` is machine-readable."""


@dataclass(frozen=True)
class GroundTruth:
    """Reference signals of one clip."""

    ppg: np.ndarray                       # contact PPG (arbitrary units)
    times_s: np.ndarray                   # seconds, one per PPG sample (strictly increasing)
    heart_rate_bpm: np.ndarray | None     # the device's heart rate per sample (or None)
    notes: tuple[str, ...] = ()           # repairs made while reading (dropped samples), for the report


@dataclass(frozen=True)
class Clip:
    """One video with its ground-truth file."""

    name: str
    video: Path
    truth: Path
    notes: tuple[str, ...] = ()   # e.g. the same ground-truth file as another clip (a copying mistake)


def _numbers(line: str) -> np.ndarray:
    text = line.replace(",", " ").split()
    return np.array([float(v) for v in text], dtype=np.float64) if text else np.zeros(0)


#: Largest share of samples whose time is repeated or goes backwards that :func:`read_ground_truth` repairs (by
#: dropping them); a file with more is rejected as ``bad_ground_truth``.
MAX_REPAIRED_SHARE = 0.05


def drop_unordered_samples(times_s: np.ndarray) -> np.ndarray:
    """Boolean mask of the samples to keep so the times strictly increase: each kept sample is later than the last
    kept one (a repeated timestamp or a step back, as oximeter logs sometimes hold, drops the later sample)."""
    times_s = np.asarray(times_s, dtype=np.float64)
    keep = np.isfinite(times_s)
    last = -np.inf
    for i in np.flatnonzero(keep):
        if times_s[i] > last:
            last = times_s[i]
        else:
            keep[i] = False
    return keep


def _repaired(path: Path, ppg: np.ndarray, times: np.ndarray, heart_rate: np.ndarray | None) -> GroundTruth:
    """Drop samples out of time order (or with a non-finite time or PPG value), with a note; reject a file where
    more than :data:`MAX_REPAIRED_SHARE` of the samples would go."""
    keep = drop_unordered_samples(times) & np.isfinite(ppg)
    dropped = int(len(times) - keep.sum())
    notes: tuple[str, ...] = ()
    if dropped:
        if dropped > MAX_REPAIRED_SHARE * len(times) or keep.sum() < 10:
            raise DatasetError("bad_ground_truth", f"{path.name}: the times are not increasing ({dropped} of "
                                                   f"{len(times)} samples repeat or go back in time)")
        bad = np.flatnonzero(~keep)
        where = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        notes = (f"{path.name}: dropped {dropped} of {len(times)} samples whose time repeats or goes back "
                 f"(sample {where})",)
        log.info("%s", notes[0])
    return GroundTruth(ppg=ppg[keep], times_s=times[keep],
                       heart_rate_bpm=None if heart_rate is None else heart_rate[keep], notes=notes)


def read_ground_truth(path: str | Path) -> GroundTruth:
    """Read ``ground_truth.txt`` / ``name.txt`` (three lines) or UBFC's ``gtdump.xmp``.

    Oximeter logs sometimes repeat a timestamp (5 of UBFC-rPPG DATASET_2's subjects do, once each) or step back;
    such samples are dropped and listed in :attr:`GroundTruth.notes` (see :func:`drop_unordered_samples`).

    Raises
    ------
    DatasetError
        ``bad_ground_truth`` when the file cannot be parsed, its lines disagree in length, or more than
        :data:`MAX_REPAIRED_SHARE` of its samples are out of time order.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError("bad_ground_truth", f"{path.name}: cannot read ({exc})") from None
    try:
        if path.suffix.lower() == ".xmp":
            rows = [_numbers(line) for line in text.splitlines() if line.strip()]
            if not rows or any(len(row) < 4 for row in rows):
                raise ValueError("expected rows of: time ms, heart rate, SpO2, PPG")
            table = np.array([row[:4] for row in rows])
            if len(table) < 10:
                raise ValueError(f"only {len(table)} rows")
            return _repaired(path, table[:, 3], (table[:, 0] - table[0, 0]) / 1000.0, table[:, 1])
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if len(lines) < 2:
            raise ValueError("expected three lines: PPG, heart rate (may be empty), times in seconds")
        ppg = _numbers(lines[0])
        times = _numbers(lines[2] if len(lines) >= 3 else lines[1])
        heart_rate = _numbers(lines[1]) if len(lines) >= 3 else np.zeros(0)
    except ValueError as exc:
        raise DatasetError("bad_ground_truth", f"{path.name}: {exc}") from None
    if len(ppg) < 10 or len(times) != len(ppg):
        raise DatasetError("bad_ground_truth", f"{path.name}: {len(ppg)} PPG values but {len(times)} times")
    if len(heart_rate) == 1:
        heart_rate = np.full(len(ppg), heart_rate[0])
    return _repaired(path, ppg, times, heart_rate if len(heart_rate) == len(ppg) else None)


def find_clips(root: str | Path) -> list[Clip]:
    """The clips under ``root`` in either layout (a single UBFC subject folder works too), sorted by name.

    Folders that cannot be listed and hidden ones are skipped. Two clips whose ground-truth files are byte for
    byte the same (public copies of UBFC-rPPG hold such a mix-up) each get a note in :attr:`Clip.notes`: one of
    the two references belongs to another recording.

    Raises
    ------
    DatasetError
        ``not_found`` when ``root`` is not a folder, ``no_clips`` when nothing with ground truth is inside.
    """
    import hashlib

    root = Path(root)
    if not root.is_dir():
        raise DatasetError("not_found", f"No such dataset folder: {root}")
    found: list[Clip] = []

    def listing(folder: Path) -> list[Path]:
        try:
            return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            log.warning("skipping %s: %s", folder, exc)
            return []

    def subject(folder: Path, name: str) -> None:
        entries = listing(folder)
        videos = [p for p in entries if p.suffix.lower() in VIDEO_SUFFIXES and p.stem.lower() == "vid" and p.is_file()]
        by_name = {p.name.lower(): p for p in entries if p.is_file()}
        truth = by_name.get("ground_truth.txt") or by_name.get("gtdump.xmp")
        if videos and truth is not None:
            found.append(Clip(name, videos[0], truth))

    top = listing(root)
    subject(root, root.name)
    for folder in (p for p in top if p.is_dir()):
        subject(folder, folder.name)
    for video in (p for p in top if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES):
        truth = video.with_suffix(".txt")
        if truth.is_file():
            found.append(Clip(video.stem, video, truth))
    if not found:
        raise DatasetError("no_clips", f"No clips with ground truth in {root} (expected <subject>/vid.avi + "
                                       "ground_truth.txt, or name.avi + name.txt)")
    digests: dict[str, list[str]] = {}
    for clip in found:
        try:
            digests.setdefault(hashlib.sha256(clip.truth.read_bytes()).hexdigest(), []).append(clip.name)
        except OSError:
            continue  # read_ground_truth reports it
    clips = []
    for clip in found:
        twins = next((names for names in digests.values() if clip.name in names and len(names) > 1), [])
        others = [n for n in twins if n != clip.name]
        if others:
            note = f"{clip.truth.name} is the same file as {', '.join(others)}'s: one of them is another recording's"
            log.warning("%s: %s", clip.name, note)
            clip = Clip(clip.name, clip.video, clip.truth, (note,))
        clips.append(clip)
    return clips
