"""The run store (mlffbench.engine.store): job keys, job state transitions, crash recovery, provenance."""

from __future__ import annotations

import sqlite3

import pytest

from mlffbench.engine.store import RunStore, canonical_json, environment_provenance, job_key, open_existing
from mlffbench.errors import MlffbenchError

INPUTS = {"element": "Cu", "data": {"frames": 10, "temperatures": {"cold": 0.25, "warm": 0.75}}, "seed": 0}


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "run")
    yield s
    s.close()


# -- job keys ---------------------------------------------------------------------------------------


def test_job_key_stable_for_same_inputs():
    key = job_key("data", INPUTS, "0.1.0")
    assert key == job_key("data", INPUTS, "0.1.0")
    assert len(key) == 20 and all(c in "0123456789abcdef" for c in key)
    # dict order does not matter (canonical JSON)
    reordered = {"seed": 0, "data": {"temperatures": {"warm": 0.75, "cold": 0.25}, "frames": 10}, "element": "Cu"}
    assert job_key("data", reordered, "0.1.0") == key
    assert canonical_json(reordered) == canonical_json(INPUTS)


@pytest.mark.parametrize(
    "kind, inputs, code",
    [
        ("score", INPUTS, "0.1.0"),  # kind
        ("data", {**INPUTS, "element": "Ni"}, "0.1.0"),  # top-level input
        ("data", {**INPUTS, "seed": 1}, "0.1.0"),
        ("data", {**INPUTS, "data": {**INPUTS["data"], "frames": 11}}, "0.1.0"),  # nested input
        ("data", {**INPUTS, "data": {**INPUTS["data"], "temperatures": {"cold": 0.25, "warm": 0.8}}}, "0.1.0"),
        ("data", {**INPUTS, "extra": None}, "0.1.0"),  # an added key
        ("data", INPUTS, "0.1.1"),  # code version
    ],
)
def test_job_key_changes_with_any_input(kind, inputs, code):
    assert job_key(kind, inputs, code) != job_key("data", INPUTS, "0.1.0")


# -- jobs -------------------------------------------------------------------------------------------


def test_add_job_is_idempotent(store):
    key = job_key("data", INPUTS, "v")
    job = store.add_job(key, "data", "data:Cu", INPUTS)
    assert (job.key, job.kind, job.name, job.inputs) == (key, "data", "data:Cu", INPUTS)
    assert (job.status, job.attempts, job.result, job.error) == ("pending", 0, None, None)
    again = store.add_job(key, "data", "data:Cu", INPUTS)
    assert again == job
    assert len(list(store.jobs())) == 1
    # a finished job stays finished when added again
    store.start(key)
    store.finish(key, {"x": 1}, 0.5)
    again = store.add_job(key, "data", "data:Cu", INPUTS)
    assert again.status == "done" and again.result == {"x": 1} and again.attempts == 1
    assert len(list(store.jobs())) == 1


def test_start_finish_fail_transitions(store):
    a, b = job_key("data", INPUTS, "v"), job_key("score", INPUTS, "v")
    store.add_job(a, "data", "data:Cu", INPUTS)
    store.add_job(b, "score", "score:Cu:m", INPUTS)

    store.start(a)
    job = store.get(a)
    assert job.status == "running" and job.attempts == 1
    store.finish(a, {"overall": {"forces.mae": 0.25}, "n": [1, 2]}, 1.5)
    job = store.get(a)
    assert job.status == "done" and job.result == {"overall": {"forces.mae": 0.25}, "n": [1, 2]}
    assert job.wall_s == 1.5 and job.error is None

    store.start(b)
    store.fail(b, "ValueError: boom", "Traceback ...", 0.25)
    job = store.get(b)
    assert job.status == "failed" and job.error == "ValueError: boom" and job.result is None
    assert job.attempts == 1 and job.wall_s == 0.25
    log = store._conn.execute("SELECT log FROM jobs WHERE key=?", (b,)).fetchone()[0]
    assert log == "Traceback ..."

    # a retried failed job that then succeeds clears its error
    store.start(b)
    store.finish(b, {"ok": True}, 0.1)
    job = store.get(b)
    assert job.status == "done" and job.error is None and job.attempts == 2

    assert store.get("no-such-key") is None
    assert [j.kind for j in store.jobs("score")] == ["score"]
    assert {j.key for j in store.jobs()} == {a, b}


def test_running_job_becomes_pending_after_crash(tmp_path):
    key = job_key("data", INPUTS, "v")
    s = RunStore(tmp_path)
    s.add_job(key, "data", "data:Cu", INPUTS)
    s.start(key)
    assert s.get(key).status == "running"
    s._conn.close()  # the process "dies" with the job running

    s2 = RunStore(tmp_path)
    assert s2.get(key).status == "running"  # the state on disk is what the dead run left
    job = s2.add_job(key, "data", "data:Cu", INPUTS)  # a resumed run re-registers its jobs
    assert job.status == "pending" and job.attempts == 1
    s2.start(key)
    assert s2.get(key).attempts == 2
    s2.close()


def test_counts(store):
    assert store.counts() == {"done": 0, "running": 0, "failed": 0, "pending": 0}
    keys = [job_key("score", {"i": i}, "v") for i in range(5)]
    for i, key in enumerate(keys):
        store.add_job(key, "score", f"score:{i}", {"i": i})
    store.start(keys[0])
    store.finish(keys[0], {}, 0.0)
    store.start(keys[1])
    store.finish(keys[1], {}, 0.0)
    store.start(keys[2])
    store.fail(keys[2], "E: x", "", 0.0)
    store.start(keys[3])
    assert store.counts() == {"done": 2, "running": 1, "failed": 1, "pending": 1}


def test_provenance_round_trip(store):
    values = {
        "config": {"name": "t", "data": {"elements": ["Cu", "Ni"], "min_length": 7.0}, "seed": 0},
        "protocol_notes": ["a", "b"],
        "code_version": "0.1.0",
        "none": None,
    }
    store.set_provenance(values)
    assert store.provenance() == values
    store.set_provenance({"code_version": "0.2.0"})  # replaces one key, keeps the others
    assert store.provenance() == {**values, "code_version": "0.2.0"}
    env = environment_provenance()
    store.set_provenance({"environment": env})
    assert store.provenance()["environment"] == env
    assert set(env) >= {"versions", "python", "hardware"}


def test_state_persists_and_integrity_ok(tmp_path):
    s = RunStore(tmp_path)
    key = job_key("data", INPUTS, "v")
    s.add_job(key, "data", "data:Cu", INPUTS)
    s.start(key)
    s.finish(key, {"r": 1.0}, 2.0)
    s.set_provenance({"k": [1, 2]})
    assert s.integrity_check() == "ok"
    s.close()
    s = open_existing(tmp_path)
    assert s.get(key).result == {"r": 1.0} and s.provenance() == {"k": [1, 2]}
    assert s.integrity_check() == "ok"
    s.close()
    with sqlite3.connect(tmp_path / RunStore.FILE) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_failed_write_rolls_back(store):
    key = job_key("data", INPUTS, "v")
    store.add_job(key, "data", "data:Cu", INPUTS)
    with pytest.raises(RuntimeError):
        with store._tx() as db:
            db.execute("UPDATE jobs SET status='done' WHERE key=?", (key,))
            raise RuntimeError("crash inside a transaction")
    assert store.get(key).status == "pending"
    store.start(key)  # the store is still usable
    assert store.get(key).status == "running"


def test_open_existing_refuses_non_run_dir(tmp_path):
    with pytest.raises(MlffbenchError, match="not a run directory"):
        open_existing(tmp_path)
    assert not (tmp_path / RunStore.FILE).exists()
