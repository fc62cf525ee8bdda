"""The table pulse-extraction methods register in (:func:`register_method`, a :class:`PulseMethod` each); look
methods up through :mod:`smartmirror.vitals.methods`, which imports every built-in one first and says what the
two kinds of method take."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

PulseFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class PulseMethod:
    """One registered pulse extractor."""

    name: str
    kind: Literal["trace", "frames"]
    fn: PulseFn
    realtime: bool = True
    description: str = ""
    input_size: tuple[int, int] | None = None  # (height, width) of face crops, for "frames" methods


_METHODS: dict[str, PulseMethod] = {}


def register_method(method: PulseMethod) -> PulseMethod:
    """Add a method under its (lower-case) name; a duplicate name replaces the old entry with a warning."""
    key = method.name.lower()
    if key in _METHODS and _METHODS[key].fn is not method.fn:
        log.warning("pulse method %r registered twice; the later one wins", key)
    _METHODS[key] = method
    return method


def registered(name: str) -> PulseMethod:
    """A method registered so far, by name (case-insensitive).

    Raises
    ------
    ValueError
        Listing the names registered so far when ``name`` is not one of them.
    """
    try:
        return _METHODS[name.lower()]
    except KeyError:
        raise ValueError(f"Unknown pulse method {name!r}; choose one of {', '.join(sorted(_METHODS))}") from None


def registered_methods() -> dict[str, PulseMethod]:
    """Every method registered so far, by name."""
    return dict(_METHODS)
