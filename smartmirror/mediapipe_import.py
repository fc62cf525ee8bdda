"""``import mediapipe`` without the parts the face tracker never uses (about 0.4 s of CPU per process).

MediaPipe 0.10.21's package ``__init__`` imports every legacy solution (their drawing helpers pull in matplotlib)
and the whole Tasks API (its audio tasks pull in sounddevice). :func:`mediapipe` imports the package with those
two sub-packages (``mediapipe.python.solutions`` and ``mediapipe.tasks.python``) as lazy stand-ins: a submodule is
imported when first asked for (``mp.solutions.face_mesh``, ``from mediapipe.tasks.python import vision``), so
every name still works, and the solutions the trackers use cost only their own import.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types

#: The sub-packages whose ``__init__`` only imports its submodules (all of them) and is replaced by a lazy one,
#: with the submodules imported at once (the trackers' own, which also give the package ``__init__`` the names it
#: deletes at its end).
LAZY_PACKAGES = {"mediapipe.python.solutions": ("face_detection", "face_mesh"), "mediapipe.tasks.python": ()}

_lock = threading.Lock()


class _LazyPackageLoader(importlib.abc.Loader):
    """Makes a package whose submodules are imported on first attribute access (PEP 562), without running its
    ``__init__``."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__

        def __getattr__(attribute: str) -> types.ModuleType:  # noqa: N807 - the module-level hook's name
            if attribute.startswith("__"):
                raise AttributeError(attribute)
            try:
                return importlib.import_module(f"{name}.{attribute}")
            except ModuleNotFoundError:
                raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

        module.__getattr__ = __getattr__
        for submodule in LAZY_PACKAGES[name]:
            importlib.import_module(f"{name}.{submodule}")


class _LazyPackageFinder(importlib.abc.MetaPathFinder):
    """Finds the :data:`LAZY_PACKAGES` (where the ordinary finders would) and loads them lazily."""

    def find_spec(self, fullname: str, path, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LAZY_PACKAGES or not _active.enabled:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.submodule_search_locations:
            return None
        lazy = importlib.machinery.ModuleSpec(fullname, _LazyPackageLoader(), origin=spec.origin, is_package=True)
        lazy.submodule_search_locations = list(spec.submodule_search_locations)
        return lazy


class _Active:
    enabled = False


_active = _Active()


def mediapipe() -> types.ModuleType:
    """The ``mediapipe`` package (imported once per process; lazily as described above unless already imported)."""
    with _lock:
        if "mediapipe" in sys.modules:
            return sys.modules["mediapipe"]
        finder = _LazyPackageFinder()
        sys.meta_path.insert(0, finder)
        _active.enabled = True
        try:
            import mediapipe as mp
        finally:
            _active.enabled = False
            sys.meta_path.remove(finder)
        return mp
