"""'What this run shows': TM23's headline claims checked against this run's numbers, with statistics.

Each claim compares force errors (TM23 Eq. 2 percent, or MAE) in one or more comparisons (a model on a data set,
or across metals). Every comparison's effect (the claimed-larger minus the claimed-smaller error) has a 95 %
bootstrap interval over the test frames (:mod:`mlffbench.statistics`: paired draws where both errors come from the
same frames); the claim's effect is the mean over its comparisons, with the interval of that mean (independent
draws per comparison). Status: "supported" when the interval lies above zero, "contradicted" when below, "not
enough data" when it contains zero or the run has too few comparisons (the early/late metal claim needs
``MIN_ELEMENTS`` metals per side and resamples the metals too), "not tested" when the run lacks the data (no
early/late metals, no B1/B2 pair, no transfer task). Only learned models are judged; the ``mean_energy`` baseline
(zero forces: 100 % force error by construction) and the ``labeler`` (zero error) are left out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from mlffbench import elements as elements_db
from mlffbench import statistics
from mlffbench.report.collect import RunData

BASELINES = ("mean_energy", "labeler")
EARLY_GROUPS = (4, 5, 6)
LATE_GROUPS = (8, 9, 10, 11)
MIN_ELEMENTS = 3  # metals per side before a claim across metals is judged (the quick run has 2 vs 1)
SEED = 20231  # bootstrap draws of the report; a test set's draws depend on this and its frame count only


@dataclass
class Claim:
    key: str
    claim: str  # TM23's statement
    status: str  # supported / contradicted / not enough data / not tested
    evidence: str  # the effect with its interval and n, one line
    details: list[dict] = field(default_factory=list)  # one per comparison: values, effect, lo, hi, holds
    effect: float | None = None  # mean effect over the comparisons (percent points or meV/Å)
    lo: float | None = None
    hi: float | None = None
    n: int = 0  # comparisons

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


@dataclass
class Side:
    """One error of a comparison: its point value and its bootstrap samples (NaN samples: no per-frame errors
    stored, a run made before intervals existed)."""

    value: float
    samples: np.ndarray


def _side(result: dict, test: str, stat: str, group: str | None = None, seed: int = SEED) -> Side | None:
    t = result.get("tests", {}).get(test)
    if t is None:
        return None
    flat = t["overall"] if group is None else t.get("by_group", {}).get(group)
    value = None if flat is None else flat.get(f"forces.{stat}")
    if value is None or not math.isfinite(value):
        return None
    factor = 1e3 if stat == "mae" else 1.0
    record = t.get("frames")
    if record is None:
        return Side(factor * value, np.full(statistics.N_RESAMPLES, np.nan))
    frames = None if group is None else statistics.group_frames(record, group)
    return Side(factor * value, factor * statistics.samples(record, "forces", stat, seed, frames))


def _comparison(larger: Side, smaller: Side, **info) -> dict:
    """A comparison whose claim is ``larger > smaller``: effect, interval, holds (interval above zero)."""
    d = statistics.difference(larger.samples, smaller.samples)
    return {**info, "effect": larger.value - smaller.value, "lo": d["lo"], "hi": d["hi"],
            "holds": bool(np.isfinite(d["lo"]) and d["lo"] > 0)}


def _judge(key: str, text: str, unit: str, details: list[dict], draws: list[np.ndarray], what: str) -> Claim:
    """The claim's status from the mean effect over its comparisons and the interval of that mean."""
    effect = float(np.mean([d["effect"] for d in details]))
    lo, hi = statistics.interval(np.mean(draws, axis=0))
    if not np.isfinite(lo):
        status = "not enough data"
    else:
        status = "supported" if lo > 0 else "contradicted" if hi < 0 else "not enough data"
    held = sum(d["holds"] for d in details)
    interval = f"[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "[no interval: per-frame errors not stored]"
    evidence = (f"mean effect {effect:+.2f} {unit} 95% CI {interval} over n={len(details)} {what}; the interval "
                f"excludes zero in the claimed direction for {held}/{len(details)}")
    return Claim(key, text, status, evidence, details, effect, lo if np.isfinite(lo) else None,
                 hi if np.isfinite(hi) else None, len(details))


def early_harder(run: RunData) -> Claim:
    text = "Early transition metals (groups 4-6) are harder to learn than late ones (groups 8-11)"
    per_model: dict[str, dict[str, Side]] = {}
    for r in run.results.get("accuracy", []):
        if r.get("element") and r["dataset"] in run.primary_collection() and r["label"] in _learned(run):
            side = _side(r, "test", "percent")
            if side is not None:
                per_model.setdefault(r["label"], {})[r["element"]] = side
    details, draws, short = [], [], []
    rng = np.random.default_rng(SEED)
    for model, errs in sorted(per_model.items()):
        early = [s for e, s in errs.items() if elements_db.get(e).group in EARLY_GROUPS]
        late = [s for e, s in errs.items() if elements_db.get(e).group in LATE_GROUPS]
        if not early or not late:
            continue
        if min(len(early), len(late)) < MIN_ELEMENTS:
            short.append(f"{model}: groups 4-6 {np.mean([s.value for s in early]):.2f} % (n={len(early)}) vs 8-11 "
                         f"{np.mean([s.value for s in late]):.2f} % (n={len(late)})")
            continue

        def resampled(sides):  # metals drawn with replacement, each metal's error from its own frame bootstrap
            pick = rng.integers(0, len(sides), size=(statistics.N_RESAMPLES, len(sides)))
            table = np.stack([s.samples for s in sides], axis=1)  # (B, n_metals)
            return table[np.arange(statistics.N_RESAMPLES)[:, None], pick].mean(axis=1)

        e_mean, l_mean = float(np.mean([s.value for s in early])), float(np.mean([s.value for s in late]))
        draws.append(resampled(early) - resampled(late))
        lo, hi = statistics.interval(draws[-1])
        details.append({"model": model, "early_mean": e_mean, "late_mean": l_mean, "n_early": len(early),
                        "n_late": len(late), "effect": e_mean - l_mean, "lo": lo, "hi": hi,
                        "holds": bool(np.isfinite(lo) and lo > 0)})
    if not details and short:
        return Claim("early_harder", text, "not enough data",
                     f"needs at least {MIN_ELEMENTS} metals on each side; " + "; ".join(short))
    if not details:
        have = sorted({e for errs in per_model.values() for e in errs})
        return Claim("early_harder", text, "not tested",
                     f"needs force errors of metals from groups 4-6 and 8-11 (run has: {', '.join(have) or 'none'})")
    return _judge("early_harder", text, "% points (early - late)", details, draws, "models")


def _descriptor(result: dict) -> str | None:
    params = (result.get("_inputs") or {}).get("params") or {}
    if "descriptor" in params:
        return str(params["descriptor"])
    return "B2" if result.get("model") == "acegp" else None  # the acegp default


def b2_better(run: RunData) -> Claim:
    text = "B2 (3-body ACE) descriptors give lower errors than B1 (2-body)"
    per: dict[str, dict[str, tuple[str, Side]]] = {"B1": {}, "B2": {}}
    for r in run.results.get("accuracy", []):
        d, side = _descriptor(r), _side(r, "test", "percent")
        if d in per and side is not None:
            best = per[d].get(r["dataset"])
            if best is None or side.value < best[1].value:  # the best model of each descriptor on the data set
                per[d][r["dataset"]] = (r["label"], side)
    common = sorted(set(per["B1"]) & set(per["B2"]))
    if not common:
        return Claim("b2_better", text, "not tested", "needs B1 and B2 models on the same data sets (accuracy task)")
    details = [_comparison(per["B1"][e][1], per["B2"][e][1], dataset=e, B1=per["B1"][e][1].value,
                           B2=per["B2"][e][1].value, B1_model=per["B1"][e][0], B2_model=per["B2"][e][0])
               for e in common]  # same test frames: the draws are shared (paired)
    draws = [per["B1"][e][1].samples - per["B2"][e][1].samples for e in common]
    return _judge("b2_better", text, "% points (B1 - B2)", details, draws, "data sets")


def melt_worse(run: RunData) -> Claim:
    text = "Transfer cold->melt is worse than cold->warm"
    details, draws = [], []
    for r in run.results.get("transfer", []):
        if r["point"].get("train") != "cold" or r["label"] not in _learned(run):
            continue
        warm, melt = _side(r, "warm", "percent"), _side(r, "melt", "percent", seed=SEED + 1)  # different frames
        if warm is not None and melt is not None:
            details.append(_comparison(melt, warm, model=r["label"], dataset=r["dataset"], cold_to_warm=warm.value,
                                       cold_to_melt=melt.value))
            draws.append(melt.samples - warm.samples)
    if not details:
        return Claim("melt_worse", text, "not tested", "needs the transfer task trained on cold, tested on warm and melt")
    return _judge("melt_worse", text, "% points (melt - warm)", details, draws, "model-data set pairs")


def hotter_harder(run: RunData) -> Claim:
    text = "Within the full split, melt frames have higher errors than cold frames"
    details, draws = [], []
    for r in run.results.get("accuracy", []):
        if r["label"] not in _learned(run):
            continue
        cold, melt = _side(r, "test", "mae", "cold"), _side(r, "test", "mae", "melt", seed=SEED + 1)
        if cold is not None and melt is not None:
            details.append(_comparison(melt, cold, model=r["label"], dataset=r["dataset"], cold=cold.value,
                                       melt=melt.value))
            draws.append(melt.samples - cold.samples)
    if not details:
        return Claim("hotter_harder", text, "not tested", "needs the accuracy task with cold and melt test frames")
    return _judge("hotter_harder", text, "meV/Å force MAE (melt - cold)", details, draws, "model-data set pairs")


def check_claims(run: RunData) -> list[Claim]:
    return [early_harder(run), b2_better(run), melt_worse(run), hotter_harder(run)]
