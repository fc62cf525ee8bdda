"""Identity (age and gender) is opt-in: off unless the caller, or the ``SMARTMIRROR_IDENTITY`` setting, turns it on.

The report, the app and the API all go through these three functions, so "off" means the same everywhere: no
IdentityAnalyzer is built (the models are never loaded and see no frame) and the report's ``identity`` section
is None (JSON null).

    analyzer = make_identity_analyzer(identity_enabled(identity))   # None when off
    ...                                                             # feed it frames when not None
    report["identity"] = identity_section(analyzer is not None, analyzer)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from smartmirror.identity.analyzer import IdentityAnalyzer

#: The setting (environment variable) that turns identity on when the caller does not decide.
IDENTITY_ENV = "SMARTMIRROR_IDENTITY"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def identity_enabled(setting: bool | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to estimate age and gender: ``setting`` when given, else ``SMARTMIRROR_IDENTITY``, else False.

    Raises
    ------
    ValueError
        When the variable holds something other than 1/0, true/false, yes/no, on/off.
    """
    if setting is not None:
        return bool(setting)
    raw = (os.environ if environ is None else environ).get(IDENTITY_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{IDENTITY_ENV}={raw!r} is not valid: use 1/0, true/false, yes/no or on/off")


def make_identity_analyzer(enabled: bool, **options: Any) -> IdentityAnalyzer | None:
    """An IdentityAnalyzer (``options`` go to its constructor) when enabled, else None (nothing is loaded)."""
    if not enabled:
        return None
    return IdentityAnalyzer(**options)


def identity_section(enabled: bool, analyzer: IdentityAnalyzer | None) -> dict | None:
    """The report's ``identity`` section: None when off, else the analyzer's summary.

    Raises
    ------
    ValueError
        When enabled but no analyzer was run.
    """
    if not enabled:
        return None
    if analyzer is None:
        raise ValueError("identity is enabled but no IdentityAnalyzer was run")
    return analyzer.summary()
