"""Run machinery: the SQLite run store, job keys, provenance and the executor of the main job."""
