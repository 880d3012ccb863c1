# The two commands of README.md: `make study` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2
CONFIG ?= config.yaml
# study.name of CONFIG, read by the workflow's own YAML loader and validation (any YAML style);
# `make verify STUDY=name` skips it. Expanded only when a recipe runs, after `setup` built the venv.
STUDY  ?= $(shell $(BIN)/radaug study-name $(CONFIG))

.PHONY: setup system-packages study test verify publish lint clean-study

setup: $(BIN)/.installed

$(BIN)/.installed: envs/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r envs/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

study: setup
	$(BIN)/snakemake --profile profiles/default --cores $(CORES) --configfile $(CONFIG)
	@echo "Report: results/$(STUDY)/report.html   (verify with: make verify STUDY=$(STUDY))"

# Debian packages of the SLURM and browser tests (installed when root; otherwise those tests skip).
system-packages:
	bash tests/system/install-packages.sh

# Two pytest workers (TEST_WORKERS=0: one process), each taking whole test files (--dist loadfile, so a
# module's fixtures are built once). The integration tests' smoke study is made once per session, in
# the folder the workers share, under a file lock (tests/integration/conftest.py). Not --dist loadgroup:
# with pytest 9.2 and pytest-xdist 3.8 it silently stops grouping (pytest-xdist issue 1386).
# Each worker computes with one thread (tests/conftest.py sets OMP_NUM_THREADS and the like).
TEST_WORKERS ?= 2
test: setup system-packages
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

verify: setup
	@test -n "$(STUDY)" || { echo "make verify: no study name (give STUDY=name or a valid CONFIG=file)" >&2; exit 2; }
	$(BIN)/radaug verify results/$(STUDY)

# The study's RO-Crate bundle (runs the study first if needed): results/<study>/bundle.zip
publish: setup
	$(BIN)/snakemake results/$(STUDY)/bundle.zip --profile profiles/default --cores $(CORES) --configfile $(CONFIG)
	@echo "Bundle: results/$(STUDY)/bundle.zip   (check an unpacked copy with: radaug verify DIR)"

lint: setup
	$(BIN)/snakemake --lint --configfile $(CONFIG)

# Benchmarks (benchmarks/run.py): `make bench`, `make bench QUICK=1`, `make bench BENCH=features`.
.PHONY: bench
bench: setup
	$(BIN)/python -m benchmarks.run $(if $(QUICK),--quick) $(BENCH)
