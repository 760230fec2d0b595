# `make run` and `make test` are all a new user needs; `make help` lists the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands in dvc.yaml call `python`: make it the venv's without asking for `activate`.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install run serve verify test test-slow test-floors test-full lint clean plots compare grid agent-run

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# constraints.txt pins every package (torch==2.13.0 among them) so runs are reproducible.
# A venv left by another Python (a failed first try with the wrong one) is made anew.
PY_OK := import sys; sys.exit(sys.version_info < (3, 11))
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c '$(PY_OK)' 2>/dev/null || { echo "error: topoxai needs Python >= 3.11;\
	 $(PYTHON) is $$($(PYTHON) --version 2>&1): run make PYTHON=python3.11 (or newer)" >&2; exit 1; }
	$(BIN)/python -c '$(PY_OK)' 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[pipeline,dev,clearml,serve]'
	touch $@

install: $(STAMP)  ## create .venv and install the project (only when missing or outdated)

# DVC removes a stage's outputs before running it, so a failed stage would leave none. Params
# are checked before DVC starts; a stage that fails anyway gets its last good outputs back
# from DVC's cache (as dvc.lock records them: `dvc status` then shows what is out of date).
run: $(STAMP)  ## run the pipeline (dvc repro), print the cross-validated results and `make compare`
	@topoxai check-params params.yaml
	@topoxai repro || { status=$$?; dvc checkout --quiet && echo "make run: a stage failed;\
	 restored its last good outputs with dvc checkout (dvc status shows what is out of date)" >&2;\
	 exit $$status; }
	@topoxai results
	@$(MAKE) --no-print-directory compare STAMP=
	@topoxai verify || true  # the verdict on a changed dvc.lock; `make verify` fails on it

# The model `make run` trained, at http://127.0.0.1:8000 (docs/serve.md); Ctrl-C stops it.
serve: $(STAMP)  ## serve models/ over HTTP on 127.0.0.1:8000: a page at /, POST /predict
	topoxai serve --model models

REV ?= HEAD
verify: $(STAMP)  ## after `make run`: does it reproduce REV (default HEAD)? Metrics within tolerance
	@topoxai verify --rev $(REV)

# Tests run in TEST_JOBS processes (pytest-xdist): most of their time is subprocesses waiting
# on one core each (dvc, the stage scripts), so 2 halves the suite on a 2-core machine.
TEST_JOBS ?= 2
test: $(STAMP)  ## lint, type-check and run the fast tests
	ruff check .
	ruff format --check .
	mypy
	pytest -n $(TEST_JOBS) -m 'not slow'

test-slow: $(STAMP)  ## only the slow end-to-end tests (CI runs them after `make test`)
	pytest -n $(TEST_JOBS) -m slow

# The fast tests on the oldest versions pyproject.toml allows (.ci/floors.py lists them), in
# a venv of their own: a floor that the code outgrew fails here, not on a user's machine.
FLOORS := .venv-floors
test-floors: $(STAMP)  ## the fast tests on pyproject.toml's version floors (CI runs it)
	rm -rf $(FLOORS) && $(PYTHON) -m venv $(FLOORS)
	$(BIN)/python .ci/floors.py > $(FLOORS)/floors.txt
	$(FLOORS)/bin/python -m pip install --quiet --constraint $(FLOORS)/floors.txt --editable '.[pipeline,dev,serve,clearml]'
	$(FLOORS)/bin/python -m pytest -n $(TEST_JOBS) -m 'not slow' -p no:cacheprovider

test-full: $(STAMP)  ## all tests, the slow end-to-end ones included
	pytest -n $(TEST_JOBS)

# Vega for `make plots`, from the npm registry at setup time (same major versions as DVC's
# CDN tags); kept out of git in .cache/.
VEGA := .cache/vega/node_modules
$(VEGA)/vega-embed/build/vega-embed.min.js:
	npm install --prefix .cache/vega --no-save --no-package-lock --no-audit --no-fund \
		vega@5.21.0 vega-lite@5.2.0 vega-embed@6.18.2

plots: $(STAMP) $(VEGA)/vega-embed/build/vega-embed.min.js  ## dvc plots diff REV (default HEAD) vs workspace, viewable offline, in dvc_plots/
	dvc plots diff $(REV) --html-template docs/plots_template.html -o dvc_plots
	mkdir -p dvc_plots/vendor
	cp $(VEGA)/vega/build/vega.min.js $(VEGA)/vega-lite/build/vega-lite.min.js \
		$(VEGA)/vega-embed/build/vega-embed.min.js dvc_plots/vendor/
	@echo "open dvc_plots/index.html"

# `dvc exp show` has ~200 columns (every metric, param and dependency hash); this keeps the
# experiment, the params that differ between the rows shown, and the headline metrics: the
# cross-validated ROC-AUC of the MLP with its interval and the paired test against logistic
# regression first, ranked by it (the single test split moves 0.018 F1 per two patients).
# DROP removes every column but the params (train.loss is a metric); KEEP protects the rest.
CV := mlp.roc_auc.mean|mlp.roc_auc.low|mlp.roc_auc.high|mlp_vs_logreg.roc_auc.diff
HEADLINE := $(CV)|mlp_vs_logreg.roc_auc.p|best.val_loss|best_epoch|test.roc_auc
COMPARE_DROP := (?!seed$$|level$$|data\.|train\.|evaluate\.|clearml\.|explain\.)|train\.loss$$
COMPARE_KEEP := ^(Experiment|$(subst .,\.,$(HEADLINE)))$$
SORT ?= mlp.roc_auc.mean
ORDER ?= desc
compare: $(STAMP)  ## experiments of HEAD: changed params and headline metrics, best SORT first
	@dvc exp show --md --only-changed --drop '$(COMPARE_DROP)' --keep '$(COMPARE_KEEP)' \
		--sort-by $(SORT) --sort-order $(ORDER)

# A params grid through DVC's queue: each run in its own temporary copy of the last commit
# (plus the workspace's params.yaml changes), JOBS at a time. Commit code changes first.
GRID ?= -S 'train.lr=0.001,0.01' -S 'train.optimizer=sgd,adam'
JOBS ?= 2
grid: $(STAMP)  ## queue GRID (default: 2 lr x 2 optimizers), run JOBS at a time, then `make compare`
	dvc exp run --queue $(GRID)
	@# The queue's daemon keeps the stdout and stderr it was started with: a caller reading
	@# make's output through a pipe (a test, CI) would wait on it after make is done.
	dvc queue start -j $(JOBS) </dev/null >.dvc/tmp/queue-start.log 2>&1 || { cat .dvc/tmp/queue-start.log >&2; exit 1; }
	while dvc queue status | grep -qE 'Running|Queued'; do sleep 5; done
	dvc queue stop
	dvc queue status
	@$(MAKE) --no-print-directory compare STAMP=

# Experiments on ClearML agents: one ClearML task per call for commit HEAD, which must be
# pushed to REPO. An agent listening on QUEUE clones it, installs constraints.txt's pins and
# this project, and runs `dvc exp run EXP` with the ClearML hook on (docs/scale.md: Beyond one machine).
# Quote list values in EXP with single quotes, as in GRID.
REPO ?= $(shell git remote get-url origin 2>/dev/null)
QUEUE ?= default
EXP ?= -S train.lr=0.001
# $(shell) does not see the exported PATH: hand it over, so this is the venv's python.
PROJECT = $(shell PATH="$(PATH)" python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['clearml']['project'])")
agent-run: $(STAMP)  ## queue `dvc exp run EXP` for a ClearML agent on QUEUE (HEAD pushed to REPO)
	@test -n "$(REPO)" || { echo "error: no git remote 'origin': set REPO to the URL agents clone" >&2; exit 1; }
	@test -n "$(PROJECT)" || { echo "error: params.yaml: cannot read clearml.project" >&2; exit 1; }
	clearml-task --project "$(PROJECT)" --name "dvc exp run $(EXP)" --tags dvc-exp \
		--repo "$(REPO)" --commit "$$(git rev-parse HEAD)" \
		--module "topoxai.agent exp run $(EXP) -S clearml.enabled=true -S clearml.offline=false" \
		--packages $$(grep -vE '^[[:space:]]*(#|$$)' constraints.txt) "-e .[pipeline,clearml]" \
		$(if $(QUEUE),--queue $(QUEUE))

lint: $(STAMP)  ## format the code and fix what ruff can
	ruff format .
	ruff check --fix .

clean:  ## remove the virtual environment and tool caches (not DVC outputs)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
