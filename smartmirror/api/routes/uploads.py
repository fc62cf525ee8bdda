"""Clip uploads: streamed from the request into ONE private file, removed on every path, swept after a crash.

The multipart body is parsed as it arrives (python-multipart's streaming parser): the clip's bytes go straight
into ``<upload root>/server-<id>/<request folder>/<name>`` (folders 0700, file 0600), never into an anonymous
spooled copy. The route removes the request folder whatever happens; a server killed with SIGKILL cannot, so each
server holds an ``flock`` on ``server-<id>.lock`` while it runs, and the next server to start removes every
server folder whose lock nobody holds (:func:`sweep_stale_uploads`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from smartmirror.api.routes.errors import ApiError

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: A server folder without a lock file this old is left over from a crash during start-up.
_ORPHAN_AGE_S = 60.0


def upload_root() -> Path:
    """The per-user folder holding every server's uploads (``$TMPDIR/smartmirror-uploads-<uid>``, mode 0700).

    Raises
    ------
    OSError
        When the path exists but is not a private folder of this user (a planted symlink, say).
    """
    root = Path(tempfile.gettempdir()) / f"smartmirror-uploads-{os.getuid()}"
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{root} is not a folder owned by this user; refusing to keep uploads there")
    os.chmod(root, 0o700)
    return root


@dataclass
class UploadArea:
    """This server's private upload folder, held by an ``flock`` for as long as the server runs."""

    root: Path
    folder: Path
    lock_fd: int

    @classmethod
    def create(cls, root: Path | None = None) -> UploadArea:
        """Sweep stale folders of dead servers, then make and lock this server's own."""
        root = root or upload_root()
        swept = sweep_stale_uploads(root)
        if swept:
            log.warning("removed %d upload folder(s) left by a server that did not stop cleanly", swept)
        name = f"server-{os.getpid()}-{os.urandom(4).hex()}"
        lock_fd = os.open(root / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        folder = root / name
        folder.mkdir(mode=0o700)
        return cls(root, folder, lock_fd)

    def new_request_folder(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="upload-", dir=self.folder))

    def close(self) -> None:
        """Remove this server's folder and lock (shutdown)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            (self.root / f"{self.folder.name}.lock").unlink(missing_ok=True)
        finally:
            os.close(self.lock_fd)


def sweep_stale_uploads(root: Path) -> int:
    """Remove the folders of servers that are gone (their lock is free); returns how many were removed."""
    removed = 0
    for folder in root.glob("server-*"):
        if folder.suffix == ".lock" or not folder.is_dir() or folder.is_symlink():
            continue
        lock_path = root / f"{folder.name}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            if time.time() - folder.stat().st_mtime > _ORPHAN_AGE_S:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:   # a live server holds it
            os.close(fd)
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


def safe_name(filename: str | None) -> str:
    """The upload's base name with only ``[A-Za-z0-9._-]`` (the report names the clip by it)."""
    name = _UNSAFE.sub("_", Path((filename or "").replace("\\", "/")).name).lstrip(".")[-100:]
    return name or "upload.bin"


class _FilePart:
    """python-multipart callbacks writing the first file field named in ``fields`` to a file in ``folder``."""

    def __init__(self, folder: Path, fields: tuple[str, ...]):
        self.folder = folder
        self.fields = fields
        self.path: Path | None = None
        self.size = 0
        self._fd: int | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._writing = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value_cb, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end}

    def _part_begin(self) -> None:
        self._disposition = b""
        self._writing = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if self.path is None and name in self.fields and b"filename" in options:
            filename = options[b"filename"].decode("utf-8", "replace")
            self.path = self.folder / safe_name(filename)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._writing = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writing and self._fd is not None:
            view = memoryview(data)[start:end]
            while view:
                view = view[os.write(self._fd, view):]
            self.size += end - start

    def _part_end(self) -> None:
        if self._writing:
            self._writing = False
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


async def receive_upload(request: Request, folder: Path, fields: tuple[str, ...] = ("file",)) -> Path:
    """Stream the multipart body into ``folder``; the path of the clip (first file field named in ``fields``).

    Raises
    ------
    ApiError
        415 ``unsupported_media_type`` (not multipart), 400 ``bad_request`` (malformed multipart or the client
        went away), 422 ``missing_file``, 400 ``empty_file``.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(415, "unsupported_media_type", "Send the clip as multipart/form-data (a file field 'file')")
    part = _FilePart(folder, fields)
    parser = MultipartParser(boundary, part.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ClientDisconnect:
        raise ApiError(400, "bad_request", "The client disconnected during the upload") from None
    except Exception as exc:  # python-multipart's parse errors
        if isinstance(exc, ApiError):
            raise
        raise ApiError(400, "bad_request", f"The multipart body is malformed ({exc.__class__.__name__})") from None
    finally:
        part.close()
    if part.path is None:
        names = " or ".join(repr(f) for f in fields)
        raise ApiError(422, "missing_file", f"Send the clip as a multipart/form-data file field named {names}")
    if part.size == 0:
        raise ApiError(400, "empty_file", "The uploaded file is empty (0 bytes)")
    return part.path
