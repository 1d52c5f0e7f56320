"""The notebooks run top to bottom with this package, in a temporary folder, without errors.

Each notebook is executed by a kernel started with this interpreter (the .venv's), so a
notebook cannot quietly import another installation of tillit. The notebooks create their
own data and MLflow store in the working directory, which is the temporary folder: nothing
is written into the repository. They are stored without outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests import REPO

NOTEBOOKS = REPO / "notebooks"
NAMES = (
    "01-explore-the-simulated-municipality.ipynb",
    "02-why-was-this-invoice-flagged.ipynb",
)
KERNEL = "python3"
# Appended to the executed copy only: which interpreter ran the notebook.
PROBE = "import sys\nprint(sys.prefix)"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `python3` kernel spec whose command is this interpreter, in a folder of its own."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("kernel")
    install(kernel_name=KERNEL, prefix=str(prefix))
    return prefix / "share" / "jupyter"


@pytest.fixture
def isolated(kernel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Find the kernel spec above first; keep MLflow on the notebook's own store."""
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == KERNEL
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.outputs == [], f"{name}: stored with outputs"
        assert cell.execution_count is None, f"{name}: stored with execution counts"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name: str, tmp_path: Path, isolated: None) -> None:
    before = sorted(NOTEBOOKS.iterdir())
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error

    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    probe = "".join(
        output.get("text", "") for output in nb.cells[-1].outputs if output.output_type == "stream"
    )
    assert Path(probe.strip()).resolve() == Path(sys.prefix).resolve(), (
        f"the notebook ran with {probe.strip()}, not with {sys.prefix}"
    )
    assert sorted(NOTEBOOKS.iterdir()) == before, "the notebook wrote into the repository"
