"""``app.py`` with the emotion analyzer replaced by :class:`FailingAnalyzer` (the browser test of failure
isolation: ``streamlit run tests/failing_emotion_app.py``)."""

import runpy
from dataclasses import replace
from pathlib import Path

from failing_analyzer import FailingAnalyzer  # this folder is on the script's path

from smartmirror.ui import session

if not getattr(session.default_specs, "with_failing_emotion", False):  # Streamlit reruns this script
    real_default_specs = session.default_specs

    def default_specs(*args, **kwargs):
        return [replace(spec, factory=lambda: FailingAnalyzer("emotion")) if spec.name == "emotion" else spec
                for spec in real_default_specs(*args, **kwargs)]

    default_specs.with_failing_emotion = True
    session.default_specs = default_specs

runpy.run_path(str(Path(__file__).resolve().parents[1] / "app.py"), run_name="__main__")
