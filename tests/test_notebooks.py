"""Every notebook in notebooks/ runs end to end (nbclient, a real Jupyter kernel), so none can rot.

Each notebook works on small data of its own (generated clips, drawn faces) in a temporary working folder; with
``SMARTMIRROR_NOTEBOOK_QUICK=1`` the notebooks shrink their demo runs further (fewer epochs and clips), which is
what the suite uses to stay within a minute or two for all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
#: Longest a single cell may run, seconds (a slow shared CI machine; the whole notebook is bounded by the test).
CELL_TIMEOUT_S = 300


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"train_emotion.ipynb", "train_rppg.ipynb", "train_spo2.ipynb"}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_end_to_end(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("SMARTMIRROR_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.get("execution_count") for cell in code_cells)
    errors = [out for cell in code_cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
