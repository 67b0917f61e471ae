# Every target bootstraps .venv from requirements.txt when it is missing or older than that file,
# and puts the course on its path, so that `python -m lab` and `pytest` work from any of its folders.
# From another folder: `make -C path/to/the/course grade DAY=44`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DAY    ?=
JOBS   ?= 2
# mkdocs-material prints an end-of-life banner on every build (see README, "Reading the course as a site").
export NO_MKDOCS_2_WARNING := 1

.PHONY: help venv test lint verify grade status hint quiz docs docs-build doctor run clean

help:
	@echo "make run          start the Day 48 system (users, orders, notifications, gateway)"
	@echo "make test         every check: lint, lab verify, harness, examples, site, Day 48"
	@echo "make grade DAY=44 grade your work on one day (all days without DAY); exits 0 when grading ran"
	@echo "make status       your progress through the week"
	@echo "make hint TASK=id the next hint for a task"
	@echo "make quiz DAY=45  the self-check quiz on one day (every day without DAY), graded as Day 49"
	@echo "make docs         serve the course site on http://127.0.0.1:8000"
	@echo "make docs-build   build the site strictly into site/"
	@echo "make doctor       which servers and tools are here, and how to start the rest"

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

venv: $(VENV)/.installed
	@$(PY) -m lab.course_path

lint: venv
	$(PY) -m ruff check .

verify: venv
	$(PY) -m lab verify $(DAY)

docs-build: venv
	$(PY) -m mkdocs build --strict --quiet

test: venv lint docs-build
	$(PY) -m lab verify
	$(PY) -m pytest -n $(JOBS) --dist loadgroup lab/tests tests Day-48-Mini-Project/tests

# `python -m lab grade` exits 1 while some task is not passing yet, like pytest, for CI and scripts;
# here that is a result to read, not a failure of make: say so and exit 0. Any other status fails.
grade: venv
	@$(PY) -m lab grade $(DAY); status=$$?; \
	if [ $$status -eq 1 ]; then \
		echo "Graded: some tasks are not passing yet (see the table above); that is progress to make, not an error."; \
	elif [ $$status -eq 0 ]; then \
		echo "Graded: every task passes."; \
	else exit $$status; fi

# `python -m lab status` exits 0 whatever the scores: its last line says what to do next.
status: venv
	$(PY) -m lab status

hint: venv
	$(PY) -m lab hint $(TASK)

quiz: venv
	$(PY) -m lab quiz $(if $(DAY),--day $(DAY))

docs: venv
	$(PY) -m mkdocs serve

doctor: venv
	$(PY) -m lab doctor

run: venv
	$(PY) Day-48-Mini-Project/run_local.py

clean:
	rm -rf $(VENV) site .lab artifacts .pytest_cache
