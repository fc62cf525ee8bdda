"""Process-wide settings for the live app: the video callback stays fast while the analyzers are busy."""

from __future__ import annotations

#: Python's GIL switch interval the app sets (``sys.setswitchinterval``; Python's default is 5 ms). With the face
#: tracker and the analyzers busy on other threads, every time the video callback releases the GIL (in OpenCV
#: or PyAV) it may wait a whole interval to get it back; 1 ms keeps the callback's latency low.
APP_SWITCH_INTERVAL_S = 0.001

#: Intra-op threads torch may use in the live app. The emotion CNN runs a small 64x64 model a few times a second;
#: with torch's default (one thread per core) its bursts took both cores of a 2-core machine and tripled the video
#: callback's 95th-percentile latency. One thread is plenty for it.
APP_TORCH_THREADS = 1


def tune_process_for_live(*, switch_interval_s: float = APP_SWITCH_INTERVAL_S,
                          torch_threads: int | None = APP_TORCH_THREADS) -> None:
    """Process-wide settings for the live app (``app.py`` and ``benchmarks/live.py`` call this; library code and
    the clip report do not): a short GIL switch interval and few torch threads (see the constants above).

    torch is not imported for this: the default emotion model runs on onnxruntime without it. Where torch is
    already loaded its thread count is set here; the torch models loaded later run their inference on one thread
    themselves (``EmotionPredictor``'s ``num_threads``, the pulse networks' ``_single_torch_thread``).
    """
    import sys

    sys.setswitchinterval(switch_interval_s)
    torch = sys.modules.get("torch")
    if torch_threads is not None and torch is not None:
        torch.set_num_threads(torch_threads)
