"""The clips of a batch run: names expanded to video files, opened where the task runs, analysed one per task.

A clip is named by a file, a folder (its video files, sorted), a glob, or an fsspec URL (``s3://``, ``gcs://``,
``http://``...); :func:`expand_clips` lists them. Workers open a clip from a path they can see: a local or
shared-disk path, or a URL that :func:`local_clip` copies into a private temporary file for the task and removes
afterwards. :func:`analyze_clip` is ``smartmirror analyze``'s task over many clips (run by
:func:`smartmirror.batch.run_clips`).
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartmirror.batch import BatchError
from smartmirror.frames import VIDEO_SUFFIXES


def is_url(name: str) -> bool:
    """True for an fsspec URL (``protocol://...``) other than a plain ``file://`` path."""
    return "://" in name and not name.startswith("file://")


def expand_clips(inputs: Iterable[str]) -> list[str]:
    """Video files named by files, folders (their video files, sorted) and globs, local or fsspec URLs.

    Raises
    ------
    BatchError
        ``not_found`` for a name that matches nothing, ``no_clips`` when no video is named at all.
    """
    found: list[str] = []
    for name in inputs:
        name = str(name)
        if is_url(name):
            found += _expand_url(name)
            continue
        name = name.removeprefix("file://")
        path = Path(name)
        if path.is_dir():
            videos = sorted(str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not videos:
                raise BatchError("no_clips", f"No video files ({', '.join(VIDEO_SUFFIXES)}) in the folder {path}")
            found += videos
        elif glob.has_magic(name):
            matches = sorted(p for p in glob.glob(name, recursive=True) if Path(p).is_file())
            if not matches:
                raise BatchError("not_found", f"No files match {name}")
            found += matches
        else:
            found.append(name)  # a missing or bad file is that clip's own error line
    if not found:
        raise BatchError("no_clips", "No clips given")
    return list(dict.fromkeys(found))


def _expand_url(url: str) -> list[str]:
    import fsspec

    try:
        fs, _, paths = fsspec.get_fs_token_paths(url)
        if not glob.has_magic(url) and fs.isdir(paths[0]):
            paths = sorted(p for p in fs.ls(paths[0], detail=False) if p.lower().endswith(VIDEO_SUFFIXES))
    except (ImportError, ValueError, OSError) as exc:
        raise BatchError("not_found", f"Cannot list {url}: {exc}") from None
    if not paths:
        raise BatchError("not_found", f"No files match {url}")
    return [fs.unstrip_protocol(p) for p in sorted(paths)]


@contextlib.contextmanager
def local_clip(name: str) -> Iterator[Path]:
    """A local path for a clip: the path itself, or for an fsspec URL a private temporary copy (removed after).

    Raises
    ------
    BatchError
        ``not_found`` when the URL cannot be opened.
    """
    if not is_url(name):
        yield Path(name.removeprefix("file://"))
        return
    import fsspec

    folder = tempfile.mkdtemp(prefix="smartmirror-clip-")
    try:
        target = Path(folder) / (name.rstrip("/").rsplit("/", 1)[-1] or "clip")
        try:
            with fsspec.open(name, "rb") as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, length=1 << 20)
        except (ImportError, ValueError, OSError) as exc:
            raise BatchError("not_found", f"Cannot read {name}: {exc}") from None
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def absolute(name: str) -> str:
    """A local path made absolute (workers elsewhere have another working folder); URLs unchanged."""
    return name if is_url(name) else str(Path(name.removeprefix("file://")).absolute())


@dataclass(frozen=True)
class AnalyzeJob:
    """One clip of ``smartmirror analyze`` over many clips: where it is and what to report."""

    clip: str
    method: str | None = None
    identity: bool = False
    sections: tuple[str, ...] = ()
    landmarks_every: int | None = None


def analyze_clip(job: AnalyzeJob) -> dict[str, Any]:
    """The report of one clip as one JSON Lines record: ``{"clip": name, **report}`` or
    ``{"clip": name, "error": {"code", "message"}}`` for a clip that cannot be analysed."""
    from smartmirror.errors import error_object
    from smartmirror.frames import VideoError
    from smartmirror.report import analyze_video

    try:
        with local_clip(job.clip) as path:
            report = analyze_video(path, method=job.method, identity=job.identity, sections=job.sections,
                                   landmarks_every=job.landmarks_every)
    except (VideoError, BatchError) as exc:
        return {"clip": job.clip, **error_object(exc.code, exc.message)}
    return {"clip": job.clip, **report}
