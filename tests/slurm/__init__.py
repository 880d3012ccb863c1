"""A private single-node SLURM cluster for tests (used by tests/integration/test_slurm_study.py)."""
