# Two commands for a fresh machine: `make demo` (the main job) and `make test`.
# Both bootstrap .venv (Python 3.12) first; the bootstrap is a no-op when nothing changed.
SHELL := /bin/bash
# The ROS 2 distro of the wheels (the rig's: jazzy). One distro per virtual environment; for Kilted use another
# folder: `make test ROS_DISTRO=kilted VENV=.venv-kilted`. A venv built for another distro is rebuilt.
ROS_DISTRO ?= jazzy
VENV ?= .venv
PY := $(VENV)/bin/python
# flexivrdk 1.9.x (Rizon 4/4s) cannot share a site-packages with 2.x: it lives in its own folder,
# used by the API-conformance test of the RDK 1.9 driver (PYTHONPATH=$(RDK19_DIR)).
RDK19_DIR := $(VENV)/flexivrdk-1.9
RDK19_VERSION := 1.9.4.1
# The first Python 3.12 that actually runs (a pyenv shim on PATH may exist without 3.12 being selected).
PYTHON312 := $(shell for c in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /root/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do $$c -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { command -v $$c || echo $$c; } && break; done)
STAMP := $(VENV)/.setup-stamp-$(ROS_DISTRO)
DISTRO_FILE := $(VENV)/.ros-distro

.PHONY: setup render-deps demo demo-sim twin-model twin-model-default test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): setup.py package.xml Makefile
	@if [ -z "$(PYTHON312)" ]; then echo "error: Python 3.12 not found on PATH or under pyenv" >&2; exit 1; fi
	@if [ -d $(VENV) ] && [ "$$(cat $(DISTRO_FILE) 2>/dev/null)" != "$(ROS_DISTRO)" ]; then \
		echo "$(VENV) holds other ROS wheels than $(ROS_DISTRO): rebuilding it"; rm -rf $(VENV); fi
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	@echo $(ROS_DISTRO) > $(DISTRO_FILE)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[ros-$(ROS_DISTRO),flexiv,pi05,train,sim,test]'
	@$(MAKE) --no-print-directory render-deps
	$(PY) -m pip install -q --no-deps --upgrade --target $(RDK19_DIR) 'flexivrdk==$(RDK19_VERSION)'
	@touch $(STAMP)

# MuJoCo's headless rendering (MUJOCO_GL=egl) needs EGL with Mesa's software driver: libEGL.so.1 (libegl1),
# libEGL_mesa.so.0 (libegl-mesa0), swrast_dri.so (libgl1-mesa-dri), libOpenGL.so.0 (libopengl0). Installed with apt
# where missing (root, Debian/Ubuntu); says what it did.
RENDER_LIBS := libEGL.so.1 libEGL_mesa.so.0 libOpenGL.so.0
RENDER_PKGS := libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0
render-deps:
	@missing=""; for l in $(RENDER_LIBS); do ldconfig -p | grep -q "$$l" || missing="$$missing $$l"; done; \
	ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1 || missing="$$missing swrast_dri.so"; \
	if [ -z "$$missing" ]; then echo "render-deps: EGL rendering libraries present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "render-deps: missing$$missing: apt-get install $(RENDER_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(RENDER_PKGS) >/dev/null && \
	  echo "render-deps: installed $(RENDER_PKGS)"; \
	else echo "render-deps: WARNING: missing$$missing; install $(RENDER_PKGS) (the twin's cameras need them)" >&2; fi

# The main job: the π0.5 trained on the twin (models/twin_pi05) on the MuJoCo twin over DDS, once per guidance mode.
demo: setup
	$(PY) -m rtc_controller.tools.demo --out out/demo

# The fast option: the sim arms and the sim policy (no rendering, no network), once per guidance mode.
demo-sim: setup
	$(PY) -m rtc_controller.tools.demo --scene sim --out out/demo_sim

# Regenerate the committed π0.5 policies trained on the twin (docs/training.md): 200 expert demonstrations in the
# narrow world they are evaluated in (~8 min), a fixed 3000-step run from seed 0 (~12 min on 2 CPU cores:
# models/twin_pi05), then training-time RTC fine-tuned from it on the same demonstrations (1500 steps, ~15 min:
# models/twin_pi05_rtc). The dataset and the run folders stay under data/ and runs/ (not committed).
twin-model: setup
	$(VENV)/bin/rtc-train collect data/twin_narrow --episodes 200 --twin-config config/twin_world_learned.yaml --overwrite
	$(VENV)/bin/rtc-train fit --data data/twin_narrow --out runs/twin_pi05 --config config/train/twin.yaml --overwrite
	rm -rf models/twin_pi05 && cp -r runs/twin_pi05/pi05 models/twin_pi05
	$(VENV)/bin/rtc-train fit --data data/twin_narrow --out runs/twin_pi05_rtc --config config/train/twin_rtc.yaml --overwrite
	rm -rf models/twin_pi05_rtc && cp -r runs/twin_pi05_rtc/pi05 models/twin_pi05_rtc

# The default-spread experiment of docs/results.md (not committed; it does not localise the items: 0/30): 800
# demonstrations in the twin's default world, half with recovery perturbations (~1.5 h), 10 000 steps capped at 75 min.
twin-model-default: setup
	$(VENV)/bin/rtc-train collect data/twin_default_v2 --episodes 800 --perturb 0.003 --perturb-fraction 0.5 --overwrite
	$(VENV)/bin/rtc-train fit --data data/twin_default_v2 --out runs/twin_pi05_default --config config/train/twin_default.yaml --overwrite
	rm -rf models/twin_pi05_default && cp -r runs/twin_pi05_default/pi05 models/twin_pi05_default

# Static checks that catch real bugs (undefined names, unused imports, syntax); then the suite.
lint: setup
	$(PY) -m ruff check --select F,E9 rtc_controller test benchmarks launch

test: lint
	$(PY) -m pytest -q --durations=15 test

test-fast: setup
	$(PY) -m pytest -q -m "not slow" test

bench: setup
	$(PY) benchmarks/bench_sampler.py

clean:
	rm -rf $(VENV) out build install log *.egg-info
