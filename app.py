"""SmartMirror: the Streamlit app (``streamlit run app.py``). A wellness demo, not a medical device.

All the work lives in ``smartmirror.ui.page`` (layout and panels) and ``smartmirror.live.engine`` (threads and state).
"""

import logging
import os

os.environ.setdefault("GLOG_minloglevel", "2")  # quieter MediaPipe
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from smartmirror.live.process import tune_process_for_live  # noqa: E402
from smartmirror.ui.page import main  # noqa: E402

tune_process_for_live()  # short GIL switch interval, one torch thread: the video callback stays fast (live/process.py)

logging.basicConfig(level=os.environ.get("SMARTMIRROR_LOG_LEVEL", "INFO"),
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
for noisy in ("aioice", "aiortc", "streamlit_webrtc"):  # ICE candidate chatter at INFO
    logging.getLogger(noisy).setLevel(logging.WARNING)
main()
