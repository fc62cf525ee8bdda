"""The page's "Video file" source: only an uploaded file or a video inside SMARTMIRROR_VIDEO_DIR, never a typed
path (no way to open /etc/passwd or /proc/self/environ, and no answer that tells whether a file exists)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from smartmirror.ui.sources import ConfigError, folder_video, folder_videos, video_folder

APP = Path(__file__).resolve().parents[1] / "app.py"


@pytest.fixture
def videos(tmp_path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "b.webm").write_bytes(b"x")
    (folder / "a.mp4").write_bytes(b"x")
    (folder / "notes.txt").write_text("not a video")
    (folder / ".hidden.mp4").write_bytes(b"x")
    (folder / "passwd.mp4").symlink_to("/etc/passwd")        # a link leading out of the folder
    (folder / "sub.mp4").mkdir()
    return folder


def test_only_video_files_inside_the_folder_are_offered(videos):
    assert folder_videos(videos.resolve()) == ["a.mp4", "b.webm"]
    assert folder_video(videos.resolve(), "a.mp4") == videos.resolve() / "a.mp4"
    for name in ("passwd.mp4", "../videos/a.mp4", "/etc/passwd", "notes.txt", ".hidden.mp4", "missing.mp4"):
        with pytest.raises(ValueError):
            folder_video(videos.resolve(), name)
    assert video_folder({"SMARTMIRROR_VIDEO_DIR": str(videos)}) == videos.resolve()
    assert video_folder({}) is None
    with pytest.raises(ConfigError, match="SMARTMIRROR_VIDEO_DIR"):
        video_folder({"SMARTMIRROR_VIDEO_DIR": str(videos / "a.mp4")})


@pytest.mark.parametrize("configured", [True, False])
def test_the_page_has_no_free_path_field(videos, monkeypatch, configured):
    monkeypatch.setenv("SMARTMIRROR_SOURCE", "file")
    if configured:
        monkeypatch.setenv("SMARTMIRROR_VIDEO_DIR", str(videos))
    else:
        monkeypatch.delenv("SMARTMIRROR_VIDEO_DIR", raising=False)
    monkeypatch.chdir(APP.parent)
    page = AppTest.from_file(str(APP), default_timeout=90).run()
    assert not page.exception
    assert [t.label for t in page.text_input] == []          # before: "...or a video file path on this computer"
    pickers = [s for s in page.selectbox if "video" in s.label.lower()]
    if configured:
        assert [s.options for s in pickers] == [["-", "a.mp4", "b.webm"]]
    else:
        assert pickers == [] and any("SMARTMIRROR_VIDEO_DIR" in c.value for c in page.caption)
