"""An analyzer whose ``update`` always raises: the failure the engine, the pipeline and the app must contain."""

from __future__ import annotations


class FailingAnalyzer:
    """Raises ``RuntimeError("injected failure ...")`` on every frame."""

    def __init__(self, name: str = "failing"):
        self.name = name

    def reset(self) -> None:
        pass

    def update(self, packet, face, **needs):
        raise RuntimeError(f"injected failure in analyzer {self.name!r}")

    def summary(self):
        return None
