"""The mirror's modes, defined once: what the user picks, what the agent, fatigue and the API accept.

- ``wellness``: a desk or a lounge; gentle suggestions.
- ``driver``: alerts (microsleep, drowsiness) come first.
- ``kiosk``: a shared screen; everything is forgotten when the face has been gone a while.
"""

from __future__ import annotations

from typing import Literal, get_args

Mode = Literal["wellness", "driver", "kiosk"]

#: Every mode, the default first.
MODES: tuple[str, ...] = get_args(Mode)


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`MODES`, else raise ``ValueError`` listing them."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode
