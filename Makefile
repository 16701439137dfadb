# gsc — the two commands: `make demo` and `make test`. Both run `make setup` first if needed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gsc-setup-stamp
OUT    ?= gsc-demo

.PHONY: setup demo test test-slow bench fuzz soak lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gsc demo --out $(OUT)

test: $(STAMP)
	bash scripts/test.sh

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

fuzz: $(STAMP)
	$(PY) benchmarks/fuzz_parsers.py --inputs 100000

soak: $(STAMP)
	$(PY) benchmarks/soak_bridge.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(OUT) runs .pytest_cache
