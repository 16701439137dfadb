"""The tutorials in examples/notebooks execute top to bottom (nbclient + ipykernel).

Each notebook's cell tagged ``parameters`` holds its defaults; the test inserts a cell
after it with smaller values (as papermill does), so the suite stays fast while the
notebooks' own defaults stay the ones a reader runs.
"""

import os
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "examples" / "notebooks"

#: per notebook, the test's overrides of its parameters cell
SMALL = {
    "01_link_ber_bler.ipynb": "UNCODED_SNRS_DB = [0, 6]\nCODED_SNRS_DB = [1.0, 2.0]\n"
                              "TDL_SNRS_DB = [8, 16]\nFRAMES = 64\nSIONNA_BLOCKS = 128",
    "02_send_your_photo.ipynb": "from PIL import Image\nfrom skimage import data\n"
                                "Image.fromarray(data.astronaut()).resize((128, 96))"
                                ".save('small.png')\nPHOTO = 'small.png'\n"
                                "EVAL_SNRS_DB = [10.0]\nEVAL_PHOTOS = ['coffee']",
    "03_gnuradio_loopback.ipynb": "BURSTS = 3\nLOOPBACK_SNRS_DB = [14.0]\nLOOPBACK_FRAMES = 20",
}
#: notebooks that launch GNU Radio flowgraphs (under the radio interpreter)
NEEDS_RADIO = {"03_gnuradio_loopback.ipynb"}


def test_every_notebook_has_parameters_and_no_stored_outputs():
    books = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [b.name for b in books] == sorted(SMALL)
    for path in books:
        book = nbformat.read(path, as_version=4)
        tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), \
            f"{path.name}: strip outputs before committing"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_executes(name, tmp_path):
    if name in NEEDS_RADIO and os.environ.get("CI") != "true":
        from bridge.interpreters import find_radio_python

        if not (find_radio_python() or {}).get("gnuradio"):
            pytest.skip("no interpreter imports GNU Radio (make setup installs it)")
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    at = next(i for i, c in enumerate(book.cells)
              if "parameters" in c.metadata.get("tags", []))
    book.cells.insert(at + 1, nbformat.v4.new_code_cell(SMALL[name]))
    kernel = KernelManager(kernel_name="python3", transport="ipc",  # no TCP port opened
                           ip=str(tmp_path / "kernel"))
    NotebookClient(book, km=kernel, timeout=600,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in book.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    nbformat.write(book, tmp_path / name)  # executed copy, for a look when it fails
