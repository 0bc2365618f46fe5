# `make demo` and `make test` do all the set-up on a fresh machine (a virtualenv, a Docker Engine, the images).
VENV ?= .venv
PY := $(VENV)/bin/python
RISKGYM := $(VENV)/bin/riskgym
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: setup engine lock demo test hardening bench lint images clean screenshots

# the Docker Engine (Debian's packages for it in one apt-get run) while the virtualenv installs; then the host
# observer (its packages, then built by the virtualenv's python) and the images
setup:
	@$(MAKE) --no-print-directory -j 2 --output-sync=target engine $(VENV)/.installed
	@PYTHON=$(PY) sh containers/ensure-observer.sh
	@$(RISKGYM) images build

engine:
	@sh containers/ensure-docker.sh

# exactly the locked set (hashes checked), then riskgym itself without resolving anything; then a check that
# what is installed is what is locked. Byte-compiled here: with PYTHONDONTWRITEBYTECODE set (as on CI's machines),
# Python would compile litellm's 2,700 modules again in every process that imports it
$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv --clear $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) containers/check_lock.py requirements.lock
	@touch $@

# re-resolve every dependency (dev extras and build requirements included) to the newest versions pyproject.toml
# allows, with hashes, through pip's configured index; then `make test` before committing requirements.lock
PIP_TOOLS := pip-tools==7.6.2
lock:
	python3 -m venv .cache/lock-venv
	.cache/lock-venv/bin/pip install -q --disable-pip-version-check '$(PIP_TOOLS)'
	.cache/lock-venv/bin/pip-compile -q --upgrade --extra dev --extra ray --all-build-deps --generate-hashes --allow-unsafe \
	  --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	@echo "requirements.lock re-resolved: run make test, then commit it"

demo: setup
	@rm -rf runs/demo
	$(RISKGYM) run --agent scripted:risky --agent scripted:safe --monitor rules --out runs/demo --html runs/demo/report.html

# The engine and the virtualenv as for setup; then, while the images build (those FROM the base at once), the
# observer's packages and Debian's chromium (one apt-get update), the observer's build and the linters. The tests
# run on two workers (whole files each: their module fixtures are not made twice; the hardening tally sums both),
# then those that need the Docker Engine to themselves (it is restarted) alone
test:
	@$(MAKE) --no-print-directory -j 2 --output-sync=target engine $(VENV)/.installed
	@mkdir -p .cache; (sh containers/host-packages.sh observer chromium && sh containers/ensure-chromium.sh && \
	  PYTHON=$(PY) sh containers/ensure-observer.sh) > .cache/host.log 2>&1 & host=$$!; \
	  $(MAKE) --no-print-directory lint > .cache/lint.log 2>&1 & lint=$$!; \
	  $(RISKGYM) images build; built=$$?; wait $$lint; linted=$$?; wait $$host; hosted=$$?; \
	  cat .cache/host.log .cache/lint.log; [ $$built = 0 ] && [ $$linted = 0 ] && [ $$hosted = 0 ]
	@$(PY) -m pytest -q -n 2 --dist loadfile -m "not alone" --durations=12; shared=$$?; \
	  $(PY) -m pytest -q -p no:xdist -m alone; alone=$$?; [ $$shared = 0 ] && [ $$alone = 0 ]

# the escape suite, the faults and the fuzzing alone (make test runs them too); ends with the tally
hardening: setup
	$(PY) -m pytest -q tests/hardening

# each benchmark prints its details and records its headline figures; summary.py prints them as one table
FIGURES := .bench/figures.jsonl
bench: setup .bench/inspect-venv/.installed
	@sh containers/ensure-chromium.sh
	@mkdir -p .bench && rm -f $(FIGURES)
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/step_overhead.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/observe_overhead.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/services.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/sinkhole.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/postgres.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/emulator.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/desktop.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/agent_overhead.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/episodes.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/ray_scaling.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/inspect_compare.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/cli_startup.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/grading_throughput.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/monitor.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/report_scale.py
	RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/before_after.py
	@RISKGYM_BENCH_FIGURES=$(FIGURES) $(PY) bench/summary.py

# inspect_ai, for the side-by-side benchmark, in a virtualenv of its own
.bench/inspect-venv/.installed:
	python3 -m venv .bench/inspect-venv
	.bench/inspect-venv/bin/pip install -q inspect_ai
	@touch $@

# the report's screenshots in docs/, from the demo run
screenshots: demo
	@sh containers/ensure-chromium.sh
	$(PY) docs/screenshot.py runs/demo/report.html docs

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check riskgym tests bench containers
	$(VENV)/bin/mypy riskgym

clean:
	-$(RISKGYM) sandbox prune
	rm -rf runs .pytest_cache
