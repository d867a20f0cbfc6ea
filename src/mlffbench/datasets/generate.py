"""The ``generate`` source: the TM23 data protocol (``mlffbench.data.sample``), one data set per element.

A data set is named by its element (``<prefix>-<El>`` with a ``name`` prefix); its groups are the temperature
labels (cold / warm / melt), its trajectories one per label, its reference calculator the labeler that made the
labels (the relabeler when there is one). Variants (larger cells for size extensivity or the finite-size grid)
are data sets of their own, ``<name>@<variant>``, generated with overridden protocol fields.
"""

from __future__ import annotations

from pathlib import Path

from mlffbench import frames as fr
from mlffbench.config import DataConfig, from_dict
from mlffbench.datasets.base import DataSet, write_manifest


def plan(entry: DataConfig, seed: int) -> list[DataSet]:
    """One data set per element of the entry (``covered`` resolved against its labeler)."""
    from mlffbench.data import sample

    return [_dataset(entry, el, seed) for el in sample.resolve_elements(entry)]


def _dataset(entry: DataConfig, element: str, seed: int, variant: str | None = None,
             overrides: dict | None = None) -> DataSet:
    from mlffbench.data import temperatures as temps

    protocol = {**entry.protocol(element), **(overrides or {})}
    base = f"{entry.name}-{element}" if entry.name else element
    name = f"{base}@{variant}" if variant else base
    n = protocol["frames_per_temperature"]
    # labels the element has a temperature for (a blank Metal-43 Table 1 cell: no frames there, as in the paper)
    temperatures = temps.for_element(protocol["temperatures"], element)
    metadata = [{fr.GROUP: label, fr.TRAJECTORY: f"{element}_{label}", fr.FRAME_INDEX: i}
                for label in temperatures for i in range(n)]
    reference = entry.reference(element)
    inputs = {"source": "generate", "name": name, "element": element, "data": protocol, "seed": seed}
    from mlffbench.data.sample import lammps_potentials

    # the potential files behind "lammps" (resolved through the defaults, which change): part of the key
    potentials = lammps_potentials(element, from_dict(DataConfig, protocol, "data"))
    if potentials:
        inputs["lammps_potentials"] = potentials
    from mlffbench.data.labelers import checks as label_checks

    if reference.get("name") in label_checks.IN_DATA_JOB:  # too slow for planning: the data job checks it first
        inputs["label_checks"] = {"accept": sorted(entry.accept_failed_checks)}
    return DataSet(
        name=name, source="generate", collection=entry.name or "generate", elements=(element,), periodic=True,
        has_stress=True, uniform=True, groups={label: n for label in temperatures},
        data_inputs=inputs,
        reference=reference, split=entry.split, metadata=metadata,
        provenance={"protocol": "TM23 (Methods IV.A)", "labeler": reference, "seed": seed,
                    "temperatures_K": temperatures},
        entry=entry,
    )


def variant(dataset: DataSet, name: str, overrides: dict) -> DataSet:
    """The generated data set ``dataset`` regenerated with protocol ``overrides`` (e.g. larger cells), named
    ``<name>@<variant>``."""
    return _dataset(dataset.entry, dataset.element, dataset.data_inputs["seed"], name, overrides)


def materialise(inputs: dict, folder: Path) -> dict:
    """Data job body: run the protocol (resuming finished trajectories) into ``folder`` and write the manifest."""
    from mlffbench.data import sample
    from mlffbench.data.labelers import make_labeler

    cfg = from_dict(DataConfig, inputs["data"], "data")
    relabeler = make_labeler(cfg.relabel) if cfg.relabel else None
    element = inputs["element"]
    checked = None
    if "label_checks" in inputs:  # a labeler too slow to check at planning: checked here, before it labels
        from mlffbench.data.labelers import checks as label_checks

        cell, _ = sample.prepare_cell(element, cfg, make_labeler(cfg.labeler), inputs["seed"])
        reference = cfg.relabel or cfg.labeler
        checked = label_checks.in_data_job(inputs["name"], reference if isinstance(reference, dict)
                                           else {"name": reference}, cell, inputs["seed"],
                                           inputs["label_checks"]["accept"])
    result = sample.generate_element(element, cfg, folder, make_labeler(cfg.labeler), relabeler, inputs["seed"])
    if checked is not None:
        result["labeler_checks"] = checked
    files = [(f"{element}/{Path(t['file']).name}", t["frames"]) for t in result["trajectories"].values()]
    manifest = write_manifest(folder, inputs["name"], files, fr.TEMPERATURE_LABEL)
    return {**result, "fingerprint": manifest["fingerprint"], "n_frames": manifest["n_frames"]}
