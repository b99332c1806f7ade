# Two commands set everything up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install train test test-slow test-all lint docs format bench bench-peers bench-agent bench-sweep clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (once; again when pyproject.toml changes)

train: $(STAMP)  ## train the default agent on the embedded synthetic market
	$(BIN)/python train.py $(ARGS)

# Two workers: most of the time is end-to-end runs of train.py, one core each (torch_threads=1).
# Coverage of src/adan (the train.py/eval.py/trade.py subprocesses included) is reported here;
# its floor (pyproject.toml) applies to the default suite and the slow stage together, which
# test-slow checks after appending its own coverage.
test: $(STAMP)  ## the default test suite (slow tests excluded; about 10 minutes), on 2 workers
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=15 --cov --cov-report=term \
		--cov-fail-under=0 $(ARGS)

# The long end-to-end runs and slow fault cases of tests/reliability; run after make test, it
# adds their coverage to the default suite's and fails below the floor.
test-slow: $(STAMP)  ## the slow stage .ci/run runs after make test (coverage floor on both)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=10 -m slow tests/reliability \
		--cov --cov-append --cov-report=term $(ARGS)

test-all: $(STAMP)  ## every test, slow ones included
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -m "slow or not slow" $(ARGS)

lint: $(STAMP)  ## ruff lint and format check, and the layer contract (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# autosummary writes docs/api/_generated afresh: stale pages of moved modules would fail -W
docs: $(STAMP)  ## build the Sphinx site into docs/_build/html (warnings are errors)
	@rm -rf docs/api/_generated
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## run the benchmarks under experiments/ (each prints a table)
	$(BIN)/python experiments/bench_env.py
	$(BIN)/python experiments/bench_cartpole.py
	$(BIN)/python experiments/bench_data.py
	$(BIN)/python experiments/bench_realism.py
	$(BIN)/python experiments/regime_accuracy.py
	$(BIN)/python experiments/bench_trade.py

# About 10 minutes on 2 cores: every peer ratio the README quotes, peer and ADAN cells interleaved
# (medians of 3, the load average beside each). The bench extra brings the peers; the pinned
# torch satisfies both, so nothing else is pulled.
bench-peers: $(STAMP)  ## ADAN against gym-anytrading and Stable-Baselines3, in one sitting
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python experiments/bench_peers.py --repeats 3

# About two hours on 2 cores: 5 no-churn settings and 3 markets, 3 seeds each of the default
# run, each scored by eval.py on its test split.
bench-agent: $(STAMP)  ## no-churn settings, and the agent over 3 seeds against every simple rule
	$(BIN)/python experiments/no_churn_sweep.py --table experiments/results/no_churn_sweep.md
	$(BIN)/python experiments/agent_vs_rules.py --runs synthetic:before synthetic:defaults \
		synthetic_hard:defaults binance_sample:before binance_sample:defaults

# About an hour on 2 cores: the default sweep (12 short trials) with and without pruning, over
# 3 study seeds, one trial at a time.
bench-sweep: $(STAMP)  ## what pruning saves on the default sweep (wall time, env steps, best score)
	$(BIN)/python experiments/sweep_pruning.py --study-seeds 1234 1235 1236 \
		--table experiments/results/sweep_pruning.md

clean:  ## remove the virtualenv and caches (outputs/ is kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache
