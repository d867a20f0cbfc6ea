"""Uncertainty calibration (no peer benchmark measures it; FLARE's active learning depends on it): a model that
predicts its own uncertainty (acegp: the sparse GP's predictive variances) is trained on the training frames of
some groups (cold) and its σ is compared with its errors on the held-out frames of those groups (in distribution)
and on other groups (warm, melt): calibration curve, miscalibration area, NLL, rank correlation of per-atom σ with
per-atom force error, and how well σ separates the unseen groups' frames (AUC). Metrics in
:mod:`mlffbench.calibration`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlffbench.report_text import format_table

TITLE = "Uncertainty calibration: predicted σ vs observed error (in distribution and on unseen groups)"
#: a hold-out that no data set of the run can make is a config error (a mistyped group), as for transfer
MUST_APPLY = True


def refuse(config, dataset) -> str | None:
    from mlffbench.tasks.transfer import missing_groups

    return missing_groups(config.tasks.calibration, dataset, "tasks.calibration")


def refuse_model(model) -> str | None:
    from mlffbench.models.registry import get_model_class

    if not hasattr(get_model_class(model.name).potential_class, "uncertainties"):
        return (f"{model.name} predicts no uncertainty in mlffbench (acegp does; FLARE's variances are not "
                "exposed by its adapter, deep ensembles are not implemented)")
    return None


def jobs(config, dataset, model) -> list[dict]:
    c = config.tasks.calibration
    train = c.train_groups()
    return [{"split": {"kind": "holdout", "train": train, "test": list(c.test), "within": dataset.base_split},
             "point": {"train": "+".join(train)}}]


@dataclass
class CalibrationRow:
    dataset: str
    model: str
    train: str
    test: str  # the test set: the training group(s) (in distribution) or an unseen group
    n_test: int
    force_mae: float  # eV/Å
    energy_rmse: float  # eV/atom
    energy_mean_sigma: float  # eV/atom
    miscalibration_area: float
    nll: float
    energy_spearman: float
    atom_spearman: float  # per-atom σ vs |ΔF_i|
    ood_auc: float | None  # frames of this set vs the in-distribution frames, by mean per-atom σ
    curve: dict

    @property
    def direction(self) -> str:
        """"over" (errors outside their σ intervals more often than expected: σ too small), "under" (σ too large),
        or "" within 0.02 on average over the curve."""
        gap = float(np.mean(np.subtract(self.curve["observed"], self.curve["expected"])))
        return "under" if gap > 0.02 else "over" if gap < -0.02 else ""


def summarise(results: list[dict]) -> list[CalibrationRow]:
    rows = []
    from mlffbench.tasks.accuracy import group_order

    for r in results:
        for name, t in sorted(r["tests"].items(), key=lambda kv: group_order(kv[0])):
            u = t.get("uncertainty") or {}
            if not u:
                continue
            auc = next((v for k, v in u.items() if k.startswith("ood_auc_vs_")), None)
            rows.append(CalibrationRow(r["dataset"], r["label"], r["point"]["train"], name, t["n_test"],
                                       t["overall"]["forces.mae"], u["energy_rmse"], u["energy_mean_sigma"],
                                       u["energy_miscalibration_area"], u["energy_nll"],
                                       u["energy_sigma_error_spearman"], u["atom_sigma_force_error_spearman"], auc,
                                       u["energy_curve"]))
    return rows


def table(rows: list[CalibrationRow]) -> str:
    header = ["data set", "model", "train", "test", "frames", "F MAE", "E RMSE", "mean σ_E", "miscal. area",
              "NLL", "ρ(σ_E,|ΔE|)", "ρ(σ_i,|ΔF_i|)", "OOD AUC"]
    units = ["", "", "", "", "", "meV/Å", "meV/atom", "meV/atom", "0 ideal", "per atom", "Spearman", "Spearman",
             "vs train grp"]
    body = [[r.dataset, r.model, r.train, r.test, r.n_test, f"{1e3 * r.force_mae:.1f}", f"{1e3 * r.energy_rmse:.2f}",
             f"{1e3 * r.energy_mean_sigma:.2f}", f"{r.miscalibration_area:.3f} {r.direction}".strip(), f"{r.nll:.2f}",
             f"{r.energy_spearman:.2f}", f"{r.atom_spearman:.2f}", "-" if r.ood_auc is None else f"{r.ood_auc:.2f}"]
            for r in rows]
    return format_table(header, units, body) + (
        "\nenergy calibration per atom (σ of the total energy / N); miscalibration area: mean |observed - expected| "
        "coverage of the central intervals of N(0, σ²); OOD AUC: P(a frame of this set has a larger mean per-atom σ "
        "than an in-distribution test frame); over/under: σ too small/too large (overconfident/underconfident)")
