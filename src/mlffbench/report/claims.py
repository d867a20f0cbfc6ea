"""'What this run shows': TM23's headline claims checked against this run's numbers (force % error, TM23 Eq. 2).

Each claim is "supported" (holds for every comparison made), "not supported" (holds for none), "mixed", or
"not tested" (the run lacks the data: no early/late metals, no B1/B2 pair, no transfer task). Only learned models
are judged; the ``mean_energy`` baseline (zero forces: 100 % force error by construction) and the ``labeler``
(zero error) are left out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from mlffbench import elements as elements_db
from mlffbench.report.collect import RunData, values

BASELINES = ("mean_energy", "labeler")
EARLY_GROUPS = (4, 5, 6)
LATE_GROUPS = (8, 9, 10, 11)


@dataclass
class Claim:
    key: str
    claim: str  # TM23's statement
    status: str  # supported / not supported / mixed / not tested
    evidence: str  # the numbers behind the status, one line
    details: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _learned(run: RunData) -> set[str]:
    """Labels of learned models (not baselines)."""
    out = set()
    for rs in run.results.values():
        for r in rs:
            if r.get("model") not in BASELINES:
                out.add(r["label"])
    return out


def _verdict(flags: list[bool]) -> str:
    if not flags:
        return "not tested"
    return "supported" if all(flags) else "not supported" if not any(flags) else "mixed"


def early_harder(run: RunData) -> Claim:
    text = "Early transition metals (groups 4-6) are harder to learn than late ones (groups 8-11)"
    data = values(run, "force_percent", "full", by="element")
    details = []
    for model in sorted(set(data) & _learned(run)):
        errs = data[model]
        early = [v for e, v in errs.items() if elements_db.get(e).group in EARLY_GROUPS]
        late = [v for e, v in errs.items() if elements_db.get(e).group in LATE_GROUPS]
        if early and late:
            details.append({"model": model, "early_mean": float(np.mean(early)), "late_mean": float(np.mean(late)),
                            "n_early": len(early), "n_late": len(late),
                            "holds": bool(np.mean(early) > np.mean(late))})
    if not details:
        have = sorted({e for errs in data.values() for e in errs})
        return Claim("early_harder", text, "not tested",
                     f"needs force errors of metals from groups 4-6 and 8-11 (run has: {', '.join(have) or 'none'})")
    evidence = "; ".join(f"{d['model']}: groups 4-6 {d['early_mean']:.2f} % (n={d['n_early']}) vs 8-11 "
                         f"{d['late_mean']:.2f} % (n={d['n_late']})" for d in details)
    return Claim("early_harder", text, _verdict([d["holds"] for d in details]), evidence, details)


def _descriptor(result: dict) -> str | None:
    params = (result.get("_inputs") or {}).get("params") or {}
    if "descriptor" in params:
        return str(params["descriptor"])
    return "B2" if result.get("model") == "acegp" else None  # the acegp default


def b2_better(run: RunData) -> Claim:
    text = "B2 (3-body ACE) descriptors give lower errors than B1 (2-body)"
    per: dict[str, dict[str, list[float]]] = {"B1": {}, "B2": {}}
    for r in run.results.get("accuracy", []):
        d = _descriptor(r)
        v = r["tests"]["test"]["overall"].get("forces.percent")
        if d in per and v is not None and math.isfinite(v):
            per[d].setdefault(r["dataset"], []).append(v)
    common = sorted(set(per["B1"]) & set(per["B2"]))
    if not common:
        return Claim("b2_better", text, "not tested", "needs B1 and B2 models on the same data sets (accuracy task)")
    details = [{"dataset": e, "B1": float(np.min(per["B1"][e])), "B2": float(np.min(per["B2"][e])),
                "holds": bool(np.min(per["B2"][e]) < np.min(per["B1"][e]))} for e in common]
    wins = sum(d["holds"] for d in details)
    evidence = (f"B2 lower force % error on {wins}/{len(details)} data sets; mean B1 "
                f"{np.mean([d['B1'] for d in details]):.2f} % vs B2 {np.mean([d['B2'] for d in details]):.2f} %")
    return Claim("b2_better", text, _verdict([d["holds"] for d in details]), evidence, details)


def melt_worse(run: RunData) -> Claim:
    text = "Transfer cold->melt is worse than cold->warm"
    warm, melt = values(run, "force_percent", "cold->warm"), values(run, "force_percent", "cold->melt")
    details = []
    for model in sorted(set(warm) & set(melt) & _learned(run)):
        for e in sorted(set(warm[model]) & set(melt[model])):
            details.append({"model": model, "dataset": e, "cold_to_warm": warm[model][e],
                            "cold_to_melt": melt[model][e], "holds": bool(melt[model][e] > warm[model][e])})
    if not details:
        return Claim("melt_worse", text, "not tested", "needs the transfer task trained on cold, tested on warm and melt")
    wins = sum(d["holds"] for d in details)
    evidence = (f"cold->melt worse on {wins}/{len(details)} model-data set pairs; mean cold->warm "
                f"{np.mean([d['cold_to_warm'] for d in details]):.2f} % vs cold->melt "
                f"{np.mean([d['cold_to_melt'] for d in details]):.2f} %")
    return Claim("melt_worse", text, _verdict([d["holds"] for d in details]), evidence, details)


def hotter_harder(run: RunData) -> Claim:
    text = "Within the full split, melt frames have higher errors than cold frames"
    cold, melt = values(run, "force_mae", "full:cold"), values(run, "force_mae", "full:melt")
    details = [{"model": m, "dataset": e, "cold": cold[m][e], "melt": melt[m][e], "holds": bool(melt[m][e] > cold[m][e])}
               for m in sorted(set(cold) & set(melt) & _learned(run)) for e in sorted(set(cold[m]) & set(melt[m]))]
    if not details:
        return Claim("hotter_harder", text, "not tested", "needs the accuracy task with cold and melt test frames")
    wins = sum(d["holds"] for d in details)
    return Claim("hotter_harder", text, _verdict([d["holds"] for d in details]),
                 f"force MAE higher on melt than cold frames for {wins}/{len(details)} model-data set pairs", details)


def check_claims(run: RunData) -> list[Claim]:
    return [early_harder(run), b2_better(run), melt_worse(run), hotter_harder(run)]
