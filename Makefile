# tillit: every target is a thin call of the `tillit` CLI or a tool; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= configs/default.yaml
DATA ?= data/demo
SEED ?= 7
CLIENTS ?= 3000
MONTHS ?= 12
START ?= 2025-01
PERIOD ?= $(shell $(PYTHON) -c "y,m=map(int,'$(START)'.split('-'));m+=$(MONTHS)-1;print(f'{y+(m-1)//12}-{(m-1)%12+1:02d}')")
# The MLflow store (registry, audit log, model cards) every model-using target reads and writes.
STORE ?= models
# Runs of one export go under runs/<its folder name>/, so two exports never share a folder.
DATA_NAME := $(notdir $(patsubst %/,%,$(DATA)))
OUT ?= runs/$(DATA_NAME)/score-$(PERIOD)
PROVIDERS_OUT ?= runs/$(DATA_NAME)/providers-$(PERIOD)
# OVERWRITE=1 lets score and providers replace an earlier run's outputs; never by default.
OVERWRITE ?=
OVERWRITE_FLAG := $(if $(filter 1 yes true,$(OVERWRITE)),--overwrite,)

.PHONY: help setup test test-fast lint format demo simulate validate features train promote retrain score providers bench bench-family bench-score-scale bench-spark bench-spark-national mlflow-ui clean

help: ## Show the targets and what they do
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

setup: $(VENV)/.installed ## Create .venv and install tillit with its dev tools (idempotent)

TEST_WORKERS ?= 2

test: setup ## Run every test, notebooks included, on $(TEST_WORKERS) processes (under 10 min on 2 cores)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=25

test-fast: setup ## The unit tests, less those marked slow: no training, no notebooks (under 3 min)
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not slow" --durations=10 tests/unit

lint: setup ## Check style and formatting with ruff, and types with mypy
	$(BIN)/ruff check src tests bench && $(BIN)/ruff format --check src tests bench && $(BIN)/mypy

format: setup ## Reformat the code with ruff
	$(BIN)/ruff check --fix src tests bench && $(BIN)/ruff format src tests bench

simulate: setup ## Simulate the demo municipality into $(DATA)
	$(BIN)/tillit simulate --out $(DATA) --seed $(SEED) --clients $(CLIENTS) --months $(MONTHS) --start $(START) --config $(CONFIG)

validate: setup ## Validate $(DATA) against the data contract into runs/validate (OVERWRITE=1 to replace)
	$(BIN)/tillit validate --data $(DATA) --out runs/validate $(OVERWRITE_FLAG) --config $(CONFIG)

demo: setup ## Install, simulate a municipality, validate, train, promote, score; prints the report path
	$(BIN)/tillit demo --data $(DATA) --seed $(SEED) --clients $(CLIENTS) --months $(MONTHS) --start $(START) --config $(CONFIG) --store $(STORE)

features: setup ## Build the feature table of PERIOD from $(DATA) (OVERWRITE=1 to replace)
	$(BIN)/tillit features --data $(DATA) --period $(PERIOD) --out runs/features_$(PERIOD).parquet $(OVERWRITE_FLAG) --config $(CONFIG)

train: setup ## Train on $(DATA) (invoice and provider models), register the challengers in $(STORE)
	$(BIN)/tillit train --data $(DATA) --config $(CONFIG) --store $(STORE)

promote: setup ## Make the challenger champion if it does as well on a month neither learned from
	$(BIN)/tillit promote --data $(DATA) --config $(CONFIG) --store $(STORE)

retrain: setup ## Monthly loop on $(DATA): validate, judge the waiting challenger, train anew, summarise
	$(BIN)/tillit retrain --data $(DATA) --config $(CONFIG) --store $(STORE)

score: setup ## Score PERIOD=YYYY-MM of DATA with STORE's champion into runs/<data-name>/score-PERIOD (OVERWRITE=1 to replace)
	$(BIN)/tillit score --data $(DATA) --period $(PERIOD) --out $(OUT) $(OVERWRITE_FLAG) --config $(CONFIG) --store $(STORE)

providers: setup ## Rank PERIOD's providers of DATA into runs/<data-name>/providers-PERIOD (OVERWRITE=1 to replace)
	$(BIN)/tillit providers --data $(DATA) --period $(PERIOD) --out $(PROVIDERS_OUT) $(OVERWRITE_FLAG) --config $(CONFIG) --store $(STORE)

mlflow-ui: setup ## Open the MLflow UI on $(STORE) (http://127.0.0.1:5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(STORE))/mlflow.db --host 127.0.0.1 --port 5000

bench: setup ## Time each stage on the default municipality; writes bench/results.json
	$(BIN)/python bench/run.py --out bench/results.json

bench-family: setup ## Rank the bench family of messy and odd-shaped worlds at 10 % capacity (~25 min); writes bench/family.json
	$(BIN)/python bench/robustness.py --family --out bench/family.json

SCALE_DATA ?= bench/data/score-scale
SCALE_STORE ?= bench/data/score-scale-store

bench-score-scale: setup ## Time tillit score on the 1.5 x Stockholm messy month (simulated and trained once); writes bench/score_scale.json
	$(BIN)/python bench/score_scale.py --data $(SCALE_DATA) --store $(SCALE_STORE) --prepare --repeat 2 --out bench/score_scale.json

# The pool measured on the 2-core dev machine (15 000 clients, docs/scale.md); a national month is
# BENCH_SPARK_MUNICIPALITIES=77 BENCH_SPARK_CLIENTS=3000 (230 000 clients) on a cluster.
BENCH_SPARK_MUNICIPALITIES ?= 5
BENCH_SPARK_CLIENTS ?= 3000
SPARK_MASTER ?= local[2]

bench-spark: setup ## Simulate a large month partitioned on disk, feature it on Spark, score it; writes bench/spark.json
	$(BIN)/python bench/spark.py --municipalities $(BENCH_SPARK_MUNICIPALITIES) --clients $(BENCH_SPARK_CLIENTS) --master "$(SPARK_MASTER)" --out bench/spark.json

# The national-size month: 77 x 3000 = 231 000 clients, 15.5 M visits in the month. The pool
# is simulated one municipality at a time into BENCH_SPARK_POOL and kept (reruns reuse it).
BENCH_SPARK_POOL ?= data/spark-pool
bench-spark-national: setup ## The national-size month (231 000 clients) on Spark local[2]; writes bench/spark-national.json
	nice -n 5 $(BIN)/python bench/spark.py --municipalities 77 --clients 3000 --master "$(SPARK_MASTER)" --pool $(BENCH_SPARK_POOL)/77x3000 --out bench/spark-national.json

clean: ## Remove generated data and run outputs (keeps the MLflow store in models/)
	rm -rf data runs bench/results.json
