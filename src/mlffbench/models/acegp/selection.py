"""Choice of the sparse environments.

* ``max_variance`` (FLARE's rule, TM23 Table S3): frames are visited in training order; from each, the N atomic
  environments with the largest residual variance k(x,x) - k_xu K_uu^-1 k_ux under the sparse set built so far
  are added (ties keep atom order, as FLARE's stable sort). Variance is computed once per frame, before adding.
* ``random``: N environments per frame drawn with the seed.
* ``cur``: CUR / leverage-score sampling (as GAP's ``sparse_method=cur_points``) over all training environments
  of each central species, N x frames in total, split over species by their counts, drawn with the seed.
"""

from __future__ import annotations

import numpy as np

from mlffbench.errors import ConfigError
from mlffbench.models.acegp.sgp import SparseSet

METHODS = ("max_variance", "random", "cur")


def select(method: str, frame_envs, sparse: SparseSet, per_frame: int, seed: int) -> list[np.ndarray]:
    """Fill ``sparse`` from ``frame_envs`` ((unit descriptors, species, descriptor norms) per frame: a list for
    ``cur``, any iterable, consumed once in order, otherwise); returns atom indices per frame."""
    if method not in METHODS:
        raise ConfigError(f"sparse_method must be one of {METHODS}, not {method!r}")
    if per_frame < 1:
        raise ConfigError(f"sparse_per_frame must be >= 1, not {per_frame}")
    rng = np.random.default_rng(seed)
    chosen: list[np.ndarray] = []
    if method == "cur":
        chosen = _cur(frame_envs, per_frame, rng)
        for (xhat, species, norms), idx in zip(frame_envs, chosen):
            sparse.add(xhat[idx], species[idx], norms[idx])
        return chosen
    for xhat, species, norms in frame_envs:
        usable = np.flatnonzero(np.linalg.norm(xhat, axis=1) > 0)
        k = min(per_frame, len(usable))
        if method == "random":
            idx = np.sort(rng.choice(usable, size=k, replace=False))
        else:
            var = sparse.residual_variance(xhat, species, norms)
            order = np.argsort(-var[usable], kind="stable")
            idx = usable[order[:k]]
        sparse.add(xhat[idx], species[idx], norms[idx])
        chosen.append(np.asarray(idx, dtype=np.int64))
    return chosen


def _cur(frame_envs, per_frame: int, rng) -> list[np.ndarray]:
    owner = np.concatenate([np.full(len(x), f) for f, (x, _, _) in enumerate(frame_envs)])
    local = np.concatenate([np.arange(len(x)) for x, _, _ in frame_envs])
    X = np.vstack([x for x, _, _ in frame_envs])
    species = np.concatenate([s for _, s, _ in frame_envs])
    usable = np.linalg.norm(X, axis=1) > 0
    budget = per_frame * len(frame_envs)
    picked = []
    kinds, counts = np.unique(species[usable], return_counts=True)
    for kind, count in zip(kinds, counts):
        rows = np.flatnonzero(usable & (species == kind))
        n_pick = min(len(rows), max(1, int(round(budget * count / counts.sum()))))
        U, S, _ = np.linalg.svd(X[rows], full_matrices=False)
        rank = int((S > S[0] * 1e-10).sum())
        k = min(n_pick, rank)
        leverage = (U[:, :k] ** 2).sum(axis=1)
        prob = leverage / leverage.sum()
        nonzero = int((prob > 0).sum())
        picked.append(rows[rng.choice(len(rows), size=min(n_pick, nonzero), replace=False, p=prob)])
    picked = np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
    return [np.sort(local[picked[owner[picked] == f]]) for f in range(len(frame_envs))]

