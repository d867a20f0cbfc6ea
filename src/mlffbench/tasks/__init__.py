"""Benchmark protocols (TM23 / MS25 / TEA). Each task module plans jobs for one data set and model
(``jobs(config, dataset, model) -> [spec]``) and turns their results into its typed result rows (``summarise``)
and a text table (``table``, under ``TITLE``). Optional hooks: ``refuse(config, dataset)`` (why the task cannot
run on this data set: recorded as n/a with the reason; with ``MUST_APPLY`` a task no data set can run is a config
error), ``check(config, dataset)`` (planning-time checks against the data sizes, ConfigError),
``data_variants(config, dataset)`` (extra generated data sets: name -> protocol overrides),
``resolve(inputs, after_results)`` (inputs of a job that waits for other jobs, completed by the coordinator) and
``protocol_notes(config, datasets)`` (where the task deviates from the paper, printed with the results) and
``refuse_model(model)`` (why the task cannot run this model, e.g. one without uncertainties: n/a, with the reason).

A spec is a dict: ``split`` (how the job splits its data), ``point`` (what distinguishes the job within the
task; also its name), optional ``params`` (merged over the model's params, checked at planning and reported
under the config key ``check``), ``data`` (names of extra data sets it reads), ``after`` (indices of earlier
specs of the same call whose results ``resolve`` receives; they may have failed), ``task`` (plan the job as
another task's: the observables task asks for the accuracy fit, and identical jobs are planned once), ``kind``
(default ``fit_score``; ``evaluate`` runs the task module's ``run(inputs, run_dir)`` instead, e.g. on a potential
an ``after`` job trained) and ``inputs`` (extra job inputs).

``cost`` is a report over every task's results, not a task."""

from mlffbench.tasks import (accuracy, calibration, checks, crash_test, electronic, grid, learning_curve, observables,
                             size_extensivity, transfer)

TASK_MODULES = {"accuracy": accuracy, "transfer": transfer, "learning_curve": learning_curve, "grid": grid,
                "size_extensivity": size_extensivity, "observables": observables, "crash_test": crash_test,
                "checks": checks, "calibration": calibration, "electronic": electronic}
