# The course pack's commands. `make demo` sets everything up and runs the whole
# pipeline; `make test` runs the test suite (CI runs exactly that).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv release check-release samples grade scores mutations causes bench bench-parallel lab clean

demo: $(STAMP)          ## set up, release, build the sample submissions, grade them
	@scripts/system-packages grading
	$(PY) -m course demo

test: $(STAMP)          ## the whole test suite
	@scripts/system-packages grading browser
	$(PY) -m pytest -n 2 --dist loadgroup --no-loadscope-reorder --durations=25

venv: $(STAMP)

# The environment is rebuilt only when the pins change.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), "Python 3.10 to 3.12 is needed, this is " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

release: $(STAMP)       ## regenerate release/ from source/
	$(PY) -m course release

check-release: $(STAMP) ## fail if release/ is not a fresh generation of source/
	$(PY) -m course check-release

samples: $(STAMP)       ## write the bundled sample submissions into submitted/
	$(PY) -m course samples

grade: $(STAMP)         ## autograde submitted/, write feedback/ and grades.csv
	@scripts/system-packages grading
	$(PY) -m course grade

scores: $(STAMP)
	$(PY) -m course scores

mutations: $(STAMP)     ## judge the hidden tests with correct variants and plausible mistakes
	$(PY) -m course mutations

causes: $(STAMP)        ## record how each mistake fails, for "Likely cause" feedback (runs the mutation suite)
	$(PY) -m course causes

bench: $(STAMP)         ## timing ratios of the grading pipeline
	$(PY) benchmarks/bench_grading.py
	$(PY) benchmarks/bench_mnist.py
	$(PY) benchmarks/bench_similarity.py

bench-parallel: $(STAMP) ## parallel speed-up and sandbox overhead of grading, as ratios
	$(PY) benchmarks/bench_parallel.py

lab: $(STAMP)           ## open JupyterLab on the course
	$(VENV)/bin/jupyter lab

clean:                  ## remove grading output (never submitted/ or the venv)
	rm -rf autograded/*/ autograded/grading-log.jsonl feedback gradebook.db grades.csv reports
