"""The small protocol every analyzer shares (emotion, fatigue, vitals, identity), and the base of their states.

An analyzer is fed one frame at a time, in source-clock order, together with the face tracker's observation of
that frame (``None`` when no face was found). It keeps its own temporal state and answers two questions:

- ``update`` returns the latest state after this frame (what the live UI and API show) as a frozen dataclass
  (:class:`~smartmirror.vitals.state.VitalsState`, :class:`~smartmirror.fatigue.state.FatigueState`,
  :class:`~smartmirror.emotion.state.EmotionState`, :class:`~smartmirror.identity.state.IdentityState`), or
  ``None`` when it has nothing to say yet; ``state.to_json()`` is its plain-JSON form;
- ``summary`` returns the clip-level section of the report (a JSON dict, keys in ``docs/states.md``), or ``None``.

Configuration is stored as given in ``__init__``; runtime state is created in ``reset`` and ends in ``_``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # type hints only: the state modules import this one and stay free of OpenCV
    from smartmirror.face import FaceObservation
    from smartmirror.frames import FramePacket

#: A clip-level report section: plain JSON (keys in docs/states.md).
Summary = dict[str, Any]


@runtime_checkable
class State(Protocol):
    """An analyzer's live state: a frozen dataclass with typed fields and a plain-JSON form."""

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON types (the REST API's and the docs' keys)."""


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, bools, strings, NaN and infinities are not numbers)."""
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def json_value(value: Any) -> Any:
    """``value`` in plain JSON types: a :class:`State` by its ``to_json()``, other dataclasses to dicts (field
    order), tuples to lists, numpy to Python, non-finite floats to None."""
    if isinstance(value, JsonState):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_value(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


class JsonState:
    """Base of the analyzers' frozen state dataclasses: :meth:`to_json` from the fields (their names are the JSON
    keys). Consumers read the attributes; the JSON is for the REST API and the docs."""

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON types (nested dataclasses as dicts, non-finite numbers as None)."""
        return {f.name: json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


@runtime_checkable
class Analyzer(Protocol):
    """What the engine, the clip report and the API call on every analyzer."""

    name: str

    def reset(self) -> None:
        """Forget everything learned from earlier frames (new person, new clip)."""

    def update(self, packet: FramePacket, face: FaceObservation | None) -> State | None:
        """Consume one frame; return the latest state (see :class:`State`) or None."""

    def summary(self) -> Summary | None:
        """Return the clip-level report section, or None when nothing was measured."""
