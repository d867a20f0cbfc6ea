"""Benchmark protocols (TM23 / MS25). Each task module plans fit-and-score jobs for one element and model
(``jobs``) and turns their results into its typed result rows (``summarise``) and a text table (``table``)."""

from mlffbench.tasks import accuracy, learning_curve, transfer

TASK_MODULES = {"accuracy": accuracy, "transfer": transfer, "learning_curve": learning_curve}
