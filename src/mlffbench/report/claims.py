"""'What this run shows': TM23's headline claims checked against this run's numbers, with statistics.

Each claim compares force errors (TM23 Eq. 2 percent, or MAE) in one or more comparisons (a model on a data set,
or across metals). Every comparison's effect (the claimed-larger minus the claimed-smaller error) has a 95 %
bootstrap interval over the test frames (:mod:`mlffbench.statistics`: paired draws where both errors come from the
same frames); the claim's effect is the mean over its comparisons, with the interval of that mean (independent
draws per comparison). Status: "supported" when the interval lies above zero, "contradicted" when below, "not
enough data" when it contains zero or the run has too few comparisons (the early/late metal claim needs
``MIN_ELEMENTS`` metals per side and resamples the metals too), "not tested" when the run lacks the data (no
early/late metals, no B1/B2 pair, no transfer task). Only learned models are judged; the ``mean_energy`` baseline
(zero forces: 100 % force error by construction) and the ``labeler`` (zero error) are left out.

Every claim says what it rests on: the data sets it used with each one's labeler, and, where none of those labels
is DFT, "on classical-potential labels; TM23's claim is about DFT" (or universal-surrogate labels). Data sets whose
labeler fails a label check (``mlffbench.data.labelers.checks``; run only because the config accepted the failure)
are left out of every claim and named in its row."""

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
    datasets: list[str] = field(default_factory=list)  # the data sets the comparisons used
    labelers: dict[str, str] = field(default_factory=dict)  # data set -> the labeler of its reference labels
    labels: str = ""  # what the labels are, when not DFT: "on classical-potential labels; TM23's claim is about DFT"
    excluded: dict[str, str] = field(default_factory=dict)  # data set -> why it was left out (failed label check)
    training: dict[str, str] = field(default_factory=dict)  # "data set model" -> why its training is marked († ×)

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


def excluded(run: RunData) -> dict[str, str]:
    """{data set: reason} of the data sets left out of claims: their labeler fails a label check (accepted)."""
    from mlffbench.data.labelers import checks as label_checks
    from mlffbench.engine.runner import labeler_checks_of

    records = label_checks.marked(labeler_checks_of(run.jobs, run.provenance.get("labeler_checks")))
    return {n: f"labeler {r['labeler']} fails the label check " + ", ".join(r["accepted"]) for n, r in records.items()}


#: label kinds that are not DFT, and how a claim row says it
NOT_DFT = {"classical": "classical-potential", "universal": "universal-surrogate"}


def label_kind(d: dict) -> tuple[str, str]:
    """(kind, labeler in words) of a data set's reference labels from its description: classical (a LAMMPS
    potential or EMT, DFT-fitted SNAP/UF3 included: they are fits, not DFT), universal (a pretrained surrogate), DFT
    (GPAW, or files / shipped data whose level of theory is stated), else the files' own."""
    from mlffbench.report import periodic

    spec = d.get("reference")
    prov = d.get("provenance") or {}
    if periodic.universal_spec(spec):
        return "universal", periodic.labeler_kind(spec)
    name = spec.get("name") if isinstance(spec, dict) else None
    if name in ("lammps", "emt") or (name is None and str(d.get("labeled_by", "")).startswith("lammps:")):
        return "classical", d.get("labeled_by") or periodic.labeler_kind(spec, d.get("labeled_by"))
    if name == "gpaw":
        return "DFT", "GPAW DFT"
    level = prov.get("level_of_theory")
    return ("DFT", str(level)) if level else ("files", "the data files' own labels")


def _rests_on(run: RunData, claim: Claim, used) -> Claim:
    used = [n for n in dict.fromkeys(used) if n in run.datasets]
    kinds = {n: label_kind(run.datasets[n]) for n in used}
    claim.datasets = used
    claim.labelers = {n: text for n, (_, text) in kinds.items()}
    not_dft = sorted({NOT_DFT[k] for k, _ in kinds.values() if k in NOT_DFT})
    if used and not any(k == "DFT" for k, _ in kinds.values()) and not_dft:
        claim.labels = f"on {' and '.join(not_dft)} labels; TM23's claim is about DFT"
    return claim


def _without(run: RunData, names) -> RunData:
    """The run with the results of data sets ``names`` left out (a shallow copy: the run is not changed)."""
    import copy

    if not names:
        return run
    view = copy.copy(run)
    view.results = {t: [r for r in rs if r.get("dataset") not in names] for t, rs in run.results.items()}
    view.datasets = {n: d for n, d in run.datasets.items() if n not in names}
    return view


def _used(run: RunData, claim: Claim) -> list[str]:
    """The data sets behind a judged claim's comparisons."""
    if claim.key == "early_harder":
        models = {d["model"] for d in claim.details}
        return [r["dataset"] for r in run.results.get("accuracy", []) if r["label"] in models and r.get("element")
                and r["dataset"] in run.primary_collection()
                and elements_db.get(r["element"]).group in EARLY_GROUPS + LATE_GROUPS]
    return [d["dataset"] for d in claim.details if "dataset" in d]


def _marked_fits(run: RunData, claim: Claim) -> dict[str, str]:
    """{"<mark> data set model": reason} of the budget-limited or diverged fits among a judged claim's comparisons
    (its data sets; its models where the comparisons name them, else every learned model)."""
    from mlffbench.report import training

    if claim.status == "not tested":
        return {}
    used = set(claim.datasets)
    models = {d["model"] for d in claim.details if "model" in d} or _learned(run)
    out = {}
    for rs in run.results.values():
        for r in rs:
            rec = training.of(r)
            if r.get("dataset") in used and r.get("label") in models and training.mark(rec):
                out.setdefault(f"{training.mark(rec)} {r['dataset']} {r['label']}", training.reason(rec))
    return out


def check_claims(run: RunData) -> list[Claim]:
    out = excluded(run)
    view = _without(run, out)
    claims = []
    for judge in (early_harder, b2_better, melt_worse, hotter_harder):
        claim = judge(view)
        claim = _rests_on(view, claim, _used(view, claim))
        claim.excluded = dict(out)
        claim.training = _marked_fits(view, claim)
        claims.append(claim)
    return claims


def rests_on_text(claim: Claim) -> str:
    """One line for a claim's row: its labels when not DFT, the data sets and labelers, what was left out."""
    parts = [claim.labels] if claim.labels else []
    by_labeler: dict[str, list[str]] = {}
    for n, text in claim.labelers.items():
        by_labeler.setdefault(text, []).append(n)
    if by_labeler:
        parts.append("data sets: " + "; ".join(f"{' '.join(ns)} ({text})" for text, ns in by_labeler.items()))
    if claim.training:
        parts.append("budget-limited or diverged fits among the comparisons: "
                     + "; ".join(f"{k} ({why})" for k, why in claim.training.items()))
    if claim.excluded:
        parts.append("left out: " + "; ".join(f"{n} ({why})" for n, why in claim.excluded.items()))
    return "; ".join(parts)
