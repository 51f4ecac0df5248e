# Two entry points for newcomers: `make demo` and `make test`. Each creates .venv with pip when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.torchmedic-installed

.PHONY: demo test lint bench bench-validate bench-lr bench-repair bench-loop bench-overhead bench-train bench-budget bench-properties clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,demo,vision,plot,tensorboard,lightning,bench,transformers]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m torchmedic.demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/diagnose_bench.py

bench-validate: $(STAMP)
	$(PY) bench/validate.py

bench-lr: $(STAMP)
	$(PY) bench/lr_bench.py

bench-repair: $(STAMP)
	$(PY) bench/repair_bench.py

bench-loop: $(STAMP)
	$(PY) bench/loop_bench.py

bench-overhead: $(STAMP)
	$(PY) bench/monitor_overhead.py

bench-train: $(STAMP)
	$(PY) bench/train_bench.py

bench-budget: $(STAMP)
	$(PY) bench/budget_bench.py

bench-properties: $(STAMP)
	$(PY) bench/property_bench.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
