"""Same config, same numbers, whatever the executor: one tiny run (EMT Cu frames as a files data set, acegp with a
small descriptor and the mean-energy baseline) through the in-process executor and a real Dask LocalCluster."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT

from mlffbench import frames as fr
from mlffbench.config import load_config
from mlffbench.data.io import write_frames
from mlffbench.engine.runner import MainJob

#: 40 frames of 32 atoms: large enough that OpenBLAS splits its work over threads (at 12 frames the results agree
#: even unpinned), small enough for ~10 s per executor
N_FRAMES = 40


def emt_cu(n: int) -> list:
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.set_cell(atoms.cell * (1 + 0.01 * (i % 3 - 1)), scale_atoms=True)
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        out.append(fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(),
                               config_type="bulk"))
    return out


def run(folder, executor: str) -> dict:
    cfg = {"name": "agree", "seed": 0, "datasets": [{"source": "files", "name": "cu", "files": ["cu.xyz"]}],
           "models": [{"name": "acegp", "params": {"n_max": 4, "l_max": 2}}, {"name": "mean_energy"}],
           "execution": {"executor": executor, "workers": 2}}
    path = folder / f"{executor}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    jobs = MainJob(load_config(path), folder / executor).run(progress=False)
    assert all(j.status == "done" for j in jobs), [(j.name, j.error) for j in jobs]
    return {j.name: j.result for j in jobs}


#: what may differ between two runs of the same config: measurements of the machine, not results. ``cost`` holds
#: wall times and memory; ``timings`` (in a saved acegp model) the fit's wall times, which is also why the model
#: file's bytes and hash are compared through its parsed contents instead
MEASURED = {"cost", "timings"}


def numbers(value, path=""):
    """(path, value) of every number and string in a result, MEASURED subtrees left out; a model file's artefact
    record is left out too (its contents are compared instead)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in MEASURED or (path.endswith(".artefacts") and key.endswith(("potential.json", "predictions.npz"))):
                continue
            yield from numbers(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from numbers(item, f"{path}[{i}]")
    else:
        yield path, value


def agree(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    return a == b


@pytest.mark.slow
def test_inprocess_and_dask_give_the_same_numbers(tmp_path):
    write_frames(tmp_path / "cu.xyz", emt_cu(N_FRAMES))
    inprocess, dask = run(tmp_path, "inprocess"), run(tmp_path, "dask")
    assert inprocess.keys() == dask.keys()
    a, b = dict(numbers(inprocess)), dict(numbers(dask))
    assert a.keys() == b.keys()
    assert sum(isinstance(v, float) for v in a.values()) > 200  # the test looks at the scores, not just names
    differ = {k: (a[k], b[k]) for k in a if not agree(a[k], b[k])}
    assert not differ, f"{len(differ)} of {len(a)} values differ, e.g. {list(differ.items())[:3]}"
    for path in sorted((tmp_path / "inprocess" / "models").glob("*/potential.json")):  # the trained models too
        other = tmp_path / "dask" / path.relative_to(tmp_path / "inprocess")
        x, y = (dict(numbers(json.loads(p.read_text()))) for p in (path, other))
        assert x.keys() == y.keys() and all(agree(x[k], y[k]) for k in x), path
    for path in sorted((tmp_path / "inprocess" / "models").glob("*/predictions.npz")):  # and the stored predictions
        x, y = (np.load(p) for p in (path, tmp_path / "dask" / path.relative_to(tmp_path / "inprocess")))
        assert x.files == y.files and all(
            np.array_equal(x[k], y[k]) if x[k].dtype.kind in "Uiu" else
            np.allclose(x[k], y[k], rtol=1e-12, atol=0, equal_nan=True) for k in x.files), path
