"""Reports from a run's store: periodic-table heatmaps, parity / learning-curve / cost / observables plots,
error-vs-element-property correlations, a self-contained HTML page with CSV/JSON of every number, and a
leaderboard across runs. Figures use matplotlib (Agg); nothing here retrains a model."""

from mlffbench.report.build import build_report
from mlffbench.report.compare import leaderboard, write_compare

__all__ = ["build_report", "leaderboard", "write_compare"]
