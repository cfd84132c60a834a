# Set-up and everyday targets. `make demo` and `make test` each create .venv and install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dnmsnn-installed
# The CPU build of torch is pinned only here, in the set-up path; the package itself needs torch>=2.2.
TORCH  ?= torch==2.13.0

.PHONY: demo test kernels lint docs docs-build clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)" -e ".[dev]"
	touch $(STAMP)

# The C++ kernels: compiled once at set-up (about a minute, one line says so and how long it took), then cached.
kernels: $(STAMP)
	@$(VENV)/bin/dnmsnn kernels

demo: kernels
	$(VENV)/bin/dnmsnn demo

test: kernels
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests docs benchmarks scripts

# The documentation site (mkdocs.yml, docs/): serve it with live reload, or build it with warnings as errors.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

docs-build: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) runs site .pytest_cache .hypothesis
