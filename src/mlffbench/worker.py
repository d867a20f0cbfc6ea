"""Worker entry point: ``python -m mlffbench.worker JOB_DIR`` runs the job in JOB_DIR/job.json ({kind, inputs,
run_dir}) with this interpreter and writes JOB_DIR/result.json, or JOB_DIR/error.json and exit status 1.
Lets a model's jobs run in another Python environment (its own torch, e3nn, ...)."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from mlffbench.errors import one_line


def _write(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mlffbench.worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[0])
    try:
        job = json.loads((job_dir / "job.json").read_text())
        from mlffbench.engine.jobs import execute

        result = execute(job["kind"], job["inputs"], job["run_dir"])
    except Exception as exc:  # noqa: BLE001 - reported to the coordinator through error.json
        _write(job_dir / "error.json", {"error": one_line(exc), "log": traceback.format_exc()})
        print(f"mlffbench.worker: {one_line(exc)}", file=sys.stderr)
        return 1
    _write(job_dir / "result.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
