"""Asking the browser's video encoder for enough bits that the pulse's colour survives it.

The browser encodes its camera at a bitrate its own congestion control picks (it starts near 300 kbit/s and
follows the receiver's feedback). Two levers from the receiving side:

- the SDP answer (pure string functions here): ``b=AS`` (kbit/s) caps the rate, and Chromium reads
  ``x-google-min-bitrate`` / ``x-google-start-bitrate`` / ``x-google-max-bitrate`` (kbit/s) from a codec's
  ``a=fmtp`` line;
- the receiver's bandwidth feedback (RTCP REMB): aiortc's delay-based estimator reads the late packets of a
  busy Python process as network congestion, and Chromium follows its REMB below the answer's minimum
  (measured: from 2.1 Mbit/s at START to 240-350 kbit/s 40 s later, VP8 QP 2 -> 14-17, and the pulse lost).
  :func:`floor_receiver_bitrate_feedback` keeps the REMB at or above :data:`MIN_KBIT_S`: the stream only ever
  crosses the machine's loopback or a local network, where those bits are free.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

#: kbit/s asked of the browser's VP8/H.264/VP9 encoder for a 640x480 camera (loopback: bandwidth is free).
MIN_KBIT_S = 2500
START_KBIT_S = 4000
MAX_KBIT_S = 8000

_VIDEO_CODECS = ("VP8", "VP9", "H264", "AV1")


def raise_video_bitrate(sdp: str, *, min_kbit_s: int = MIN_KBIT_S, start_kbit_s: int = START_KBIT_S,
                        max_kbit_s: int = MAX_KBIT_S) -> str:
    """``sdp`` with every video section asking for ``min..max`` kbit/s (``b=AS`` and x-google fmtp keys).

    Audio sections and every other line are left as they are; line endings stay CRLF.
    """
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out = sections[0]
    keys = f"x-google-min-bitrate={min_kbit_s};x-google-start-bitrate={start_kbit_s};" \
           f"x-google-max-bitrate={max_kbit_s}"
    for section in sections[1:]:
        if not section[0].startswith("m=video"):
            out += section
            continue
        payloads = [m.group(1) for line in section
                    if (m := re.match(r"a=rtpmap:(\d+) ([\w-]+)/", line)) and m.group(2).upper() in _VIDEO_CODECS]
        edited = [line for line in section if not line.startswith("b=AS:")]
        with_fmtp = set()
        for i, line in enumerate(edited):
            m = re.match(r"a=fmtp:(\d+) (.*)", line)
            if m and m.group(1) in payloads:
                params = ";".join(p for p in m.group(2).split(";") if not p.strip().startswith("x-google-"))
                edited[i] = f"a=fmtp:{m.group(1)} {params};{keys}" if params else f"a=fmtp:{m.group(1)} {keys}"
                with_fmtp.add(m.group(1))
        for payload in payloads:
            if payload not in with_fmtp:
                at = max(i for i, line in enumerate(edited) if line.startswith(f"a=rtpmap:{payload} "))
                edited.insert(at + 1, f"a=fmtp:{payload} {keys}")
        c_line = next((i for i, line in enumerate(edited) if line.startswith("c=")), 0)
        edited.insert(c_line + 1, f"b=AS:{max_kbit_s}")
        out += edited
    return "\r\n".join(out) + "\r\n"


_installed = False


def floored_remb(estimate: tuple[int, list[int]] | None, *, min_kbit_s: int = MIN_KBIT_S
                 ) -> tuple[int, list[int]] | None:
    """An aiortc REMB estimate ``(bit/s, ssrcs)`` raised to at least ``min_kbit_s`` (None stays None)."""
    if estimate is None:
        return None
    bitrate, ssrcs = estimate
    return max(int(bitrate), min_kbit_s * 1000), ssrcs


def floor_receiver_bitrate_feedback() -> None:
    """Make aiortc's video receivers report at least :data:`MIN_KBIT_S` in their REMB feedback. Idempotent.

    aiortc builds one ``RemoteBitrateEstimator`` per video receiver (``aiortc.rtcrtpreceiver``); this swaps in a
    subclass whose :meth:`add` passes its estimate through :func:`floored_remb`.
    """
    from aiortc import rtcrtpreceiver
    from aiortc.rate import RemoteBitrateEstimator

    if getattr(rtcrtpreceiver.RemoteBitrateEstimator, "floored", False):
        return

    class FlooredRemoteBitrateEstimator(RemoteBitrateEstimator):
        floored = True

        def add(self, *args, **kwargs):
            return floored_remb(super().add(*args, **kwargs))

    rtcrtpreceiver.RemoteBitrateEstimator = FlooredRemoteBitrateEstimator


def install_answer_bitrate() -> None:
    """Make streamlit-webrtc's SDP answers ask the browser for :data:`MIN_KBIT_S`..:data:`MAX_KBIT_S`.

    streamlit-webrtc sends the browser ``WebRtcWorker.local_description`` (aiortc's answer); this wraps that
    property so the description it returns carries :func:`raise_video_bitrate`'s lines, and floors the
    receivers' REMB feedback (:func:`floor_receiver_bitrate_feedback`). Idempotent.
    """
    global _installed
    if _installed:
        return
    floor_receiver_bitrate_feedback()
    from aiortc import RTCSessionDescription
    from streamlit_webrtc.webrtc import WebRtcWorker

    original = WebRtcWorker.local_description.fget
    edited: dict[str, str] = {}  # aiortc's answer -> the one sent (the property is read on every rerun)

    def local_description(self):
        description = original(self)
        if description is None or description.type != "answer":
            return description
        if description.sdp not in edited:
            edited.clear()
            edited[description.sdp] = raise_video_bitrate(description.sdp)
            log.info("SDP answer asks the browser's video encoder for %d-%d kbit/s", MIN_KBIT_S, MAX_KBIT_S)
        return RTCSessionDescription(sdp=edited[description.sdp], type=description.type)

    WebRtcWorker.local_description = property(local_description, doc=original.__doc__)
    _installed = True
