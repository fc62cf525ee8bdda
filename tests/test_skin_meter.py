"""The browser's skin meter, Python side: the frame tag through a real VP8 encoder, the skin masks it is sent, the
video callback's split of tag and picture, and the vitals' use of the raw colour, on the real PhysRecorder
recording (tests/data/physrecorder_v01_15fps.mkv, MIT). The JavaScript half runs in tests/test_app_browser.py."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from smartmirror.face import FaceTracker
from smartmirror.frames import FramePacket, read_video_packets
from smartmirror.ui.frame_tag import COLOUR_SCALE, draw_frame_tag, split_frame_tag, strip_rows
from smartmirror.ui.session import MirrorSession, received_bgr
from smartmirror.ui.skin_meter import MOVE_PX, SkinMeterMasks
from smartmirror.vitals.analyzer import with_raw_colour
from smartmirror.vitals.signal import face_skin_polygons, polygons_mean_rgb, skin_roi_mean_rgb

CLIP = Path(__file__).parent / "data" / "physrecorder_v01_15fps.mkv"


@pytest.fixture(scope="module")
def real_frames() -> list[np.ndarray]:
    return [packet.image for _, packet in zip(range(30), read_video_packets(CLIP), strict=False)]


@pytest.fixture(scope="module")
def real_face(real_frames):
    with FaceTracker() as tracker:
        face = tracker.process(real_frames[0])
    assert face is not None
    return face


def _vp8_round_trip(images: list[np.ndarray], bit_rate: int) -> list[np.ndarray]:
    """Encode with libvpx (the browser's codec) and decode again."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=15, options={"deadline": "realtime", "cpu-used": "8"})
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt, stream.bit_rate = "yuv420p", bit_rate
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, 15)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def test_the_tag_survives_a_starved_vp8_encoder_and_scaling_to_a_fraction_of_a_grey_level(real_frames):
    colours = [np.array([150.0, 101.0, 88.0]) + 0.01 * i for i in range(len(real_frames))]
    tagged = [draw_frame_tag(image, 65530 + i, 7, None if i == 3 else colours[i])
              for i, image in enumerate(real_frames)]
    assert tagged[0].shape == (480 + strip_rows(480), 640, 3) == (496, 640, 3)
    decoded = _vp8_round_trip(tagged, bit_rate=150_000)  # a tenth of what the app asks the browser for
    assert len(decoded) == len(real_frames)
    for i, image in enumerate(decoded):
        picture, tag = split_frame_tag(image)
        assert tag is not None, f"frame {i}: tag lost"
        assert picture.shape == (480, 640, 3)
        assert tag.counter == (65530 + i) % 65536 and tag.mask_version == 7
        if i == 3:
            assert np.isnan(tag.skin_rgb).all()                          # "not measured" travels too
        else:
            np.testing.assert_allclose(tag.skin_rgb, colours[i], atol=0.5 / COLOUR_SCALE)
    smaller = cv2.resize(decoded[5], (480, 372), interpolation=cv2.INTER_AREA)  # the browser scaled the stream
    picture, tag = split_frame_tag(smaller)
    assert tag is not None and tag.counter == 65535 and picture.shape == (360, 480, 3)


def test_a_frame_without_a_tag_is_never_read_as_one(real_frames):
    assert split_frame_tag(real_frames[0])[1] is None
    noise = np.random.default_rng(0).integers(0, 256, (496, 640, 3), dtype=np.uint8)
    assert split_frame_tag(noise)[1] is None
    damaged = draw_frame_tag(real_frames[0], 1, 1, np.array([100.0, 90.0, 80.0]))
    damaged[-16:, 40:50] = 255 - damaged[-16:, 40:50]                  # one cell flipped: the CRC rejects it
    image, tag = split_frame_tag(damaged)
    assert tag is None and image is damaged


def test_the_mask_stays_put_for_jitter_and_follows_a_moving_face(real_face):
    masks = SkinMeterMasks()
    landmarks = real_face.landmarks_px[:, :2].astype(np.float64)
    first = masks.update(landmarks, (480, 640))
    assert first is not None and first.version == 1
    jitter = np.random.default_rng(1).normal(0.0, 0.3, landmarks.shape)  # FaceMesh's jitter on a still face
    assert masks.update(landmarks + jitter, (480, 640)) is first
    moved = masks.update(landmarks + [2 * MOVE_PX, 0.0], (480, 640))
    assert moved is not None and moved.version == 2
    np.testing.assert_allclose(moved.outline, first.outline + [2 * MOVE_PX, 0.0], atol=1e-4)
    assert masks.mask(1) is first and masks.mask(2) is moved and masks.mask(3) is None
    args = moved.args()
    outline = np.array(args["outline"])
    assert args["version"] == 2 and len(args["holes"]) == 3
    assert (outline >= 0).all() and (outline <= 1).all()
    np.testing.assert_allclose(outline * [640, 480], moved.outline, atol=0.01)
    assert masks.update(None, (480, 640)) is None and masks.current is None


def test_the_vitals_restore_what_the_encoder_took_from_the_raw_colour(real_frames, real_face):
    raw = real_frames[0]
    here_landmarks = real_face.landmarks_px[:, :2]
    lagging = here_landmarks + [6.0, -3.0]                              # the browser's mask, drawn a moment ago
    outlines, holes = face_skin_polygons(lagging)
    encoded = np.clip(raw.astype(np.float64) * [1.0, 0.995, 1.0] + [0.0, 0.0, 0.4], 0, 255)  # BGR: lost signal
    encoded = encoded.round().astype(np.uint8)
    meter = polygons_mean_rgb(raw, outlines, holes).rgb
    here = skin_roi_mean_rgb(encoded, here_landmarks).rgb
    packet = FramePacket(t=0.0, image=encoded, skin_rgb=meter, skin_roi=(tuple(outlines), tuple(holes)))
    restored = with_raw_colour(packet, here)
    truth = skin_roi_mean_rgb(raw, here_landmarks).rgb
    changed = np.abs(here - truth).max()
    assert changed > 0.3                                                # what the encoding changed (grey levels)
    assert np.abs(restored - truth).max() < 0.1 * changed               # the meter gives back over 90 % of it
    assert with_raw_colour(FramePacket(t=0.0, image=encoded), here) is here
    missing = FramePacket(t=0.0, image=encoded, skin_rgb=np.full(3, np.nan))
    assert np.isnan(with_raw_colour(missing, here)).all()               # meter on, no colour: a gap, not a mix


def test_the_video_callback_splits_the_tag_from_the_picture(real_frames):
    session = MirrorSession(engine_factory=lambda *a, **k: None)
    mask = session.meter_masks.update(
        np.column_stack([np.linspace(200, 440, 478), np.linspace(120, 380, 478)]), (480, 640))
    colour = np.array([140.25, 100.5, 90.125])

    def frame(image: np.ndarray, pts: int) -> av.VideoFrame:
        video = av.VideoFrame.from_ndarray(image, format="bgr24")
        video.pts, video.time_base = pts, Fraction(1, 90000)
        return video

    plain = session.packet(frame(real_frames[0], 0))
    assert plain.skin_rgb is None and plain.image.shape == (480, 640, 3) and not session.meter_active()
    tagged = session.packet(frame(draw_frame_tag(real_frames[1], 5, mask.version, colour), 3000))
    assert tagged.t == pytest.approx(3000 / 90000)
    np.testing.assert_array_equal(tagged.image, real_frames[1])
    np.testing.assert_allclose(tagged.skin_rgb, colour, atol=1 / COLOUR_SCALE)
    assert tagged.skin_roi[0][0] is mask.outline and session.meter_active() and session.meter_frames == 1
    garbled = draw_frame_tag(real_frames[2], 6, mask.version, colour)
    garbled[-16:] = 128
    lost = session.packet(frame(garbled, 6000))
    assert lost.image.shape == (480, 640, 3) and np.isnan(lost.skin_rgb).all()
    unknown = session.packet(frame(draw_frame_tag(real_frames[3], 7, 200, colour), 9000))
    assert unknown.skin_roi is None and np.isnan(with_raw_colour(unknown, colour)).all()


def test_a_received_i420_frame_is_read_with_the_meters_integers_and_other_formats_by_pyav(real_frames):
    """VP8 frames arrive as I420: OpenCV's BT.601 studio-range integers (those of skin_meter_core.js, checked in
    test_skin_meter_js.py), not libswscale's, which read the same bytes about a grey level lower."""
    i420 = av.VideoFrame.from_ndarray(real_frames[0], format="bgr24").reformat(format="yuv420p")
    expected = cv2.cvtColor(i420.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)
    np.testing.assert_array_equal(received_bgr(i420), expected)
    assert np.abs(i420.to_ndarray(format="bgr24").astype(float) - expected).mean() > 0.3  # the two do differ
    np.testing.assert_array_equal(received_bgr(av.VideoFrame.from_ndarray(real_frames[1], format="bgr24")),
                                  real_frames[1])


def test_the_page_names_the_pulse_source_it_actually_uses(monkeypatch):
    from smartmirror.ui.page import pulse_source_caption
    from smartmirror.ui.skin_meter import skin_meter_enabled

    assert "raw frames, before the video is encoded" in pulse_source_caption("webcam", None, meter=True)
    assert "skin meter is not measuring" in pulse_source_caption("webcam", None, meter=False)
    for meter in (True, False):  # crops only arrive encoded
        learned = pulse_source_caption("webcam", "facephys-rlap", meter=meter)
        assert "over WebRTC" in learned and "raw frames" not in learned and "face picture" in learned
    assert "before any lossy encoding" in pulse_source_caption("demo", None, meter=True)
    assert skin_meter_enabled() and skin_meter_enabled("pos")
    assert not skin_meter_enabled("facephys-rlap")  # it reads the picture: the meter would only cost the page
    monkeypatch.setenv("SMARTMIRROR_SKIN_METER", "0")
    assert not skin_meter_enabled()
