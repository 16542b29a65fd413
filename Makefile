# The one command vocabulary: developers, hooks and CI run these targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
CLARA_VENV := .clara-venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.8
# NVIDIA's client, kept apart: its generated code wants protobuf 3.20.3 and its descriptors
# collide with ours in one process (see "NVIDIA's client and its protobuf" in
# docs/clara-compatibility.md).
CLARA_CLIENT := nvidia-clara-client==0.8.1.7 protobuf==3.20.3 grpcio==1.85.1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The unprivileged user a platform running as root starts host-process operators as
# (AORTA_LOCAL_RUN_AS); never given a home or a login shell.
OPERATOR_USER := aorta-operator
TRITON_USER := aorta-triton
# What every podman the project starts reads: Podman's defaults fail on hosts like ours
# (rlimits, hybrid cgroups). `make setup` also installs it where podman looks, when the host
# has no containers.conf of its own.
CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf

.PHONY: help setup system leader python-rootfs image images run test test-deploy test-fast lint typecheck check protos bench clean

help:
	@echo "make setup      install system packages (Chromium for the console's browser tests), the operators' user, .venv and .clara-venv"
	@echo "make run        start the embedded platform and run the example pipeline end to end"
	@echo "make image      build the Aorta image (podman, from a Debian base made here, no registry)"
	@echo "make images     build the example pipeline's operator images (podman, cached)"
	@echo "make test       lint, type-check and run the whole test suite"
	@echo "make test-deploy  only the container deployment test (part of make test)"
	@echo "make protos     regenerate aorta.api from protos/"
	@echo "make bench      run the benchmark scripts"

setup: system $(VENV)/.installed $(CLARA_VENV)/.installed python-rootfs leader

# The native group leader of host-process operators: it starts in well under a millisecond where
# the Python one takes tens (docs/performance.md, "Operators"). Static when the C library allows;
# without gcc the executor keeps using the Python leader.
LEADER := shared/aorta/executors/local/group_leader
leader: $(LEADER)
$(LEADER): $(LEADER).c
	@command -v gcc >/dev/null || { echo "no gcc: operators start under the Python group leader"; exit 0; }; \
	{ gcc -O2 -Wall -Wextra -static -o $@.new $< 2>/dev/null || gcc -O2 -Wall -Wextra -o $@.new $<; } || \
	  { rm -f $@.new; echo "warning: the native group leader did not build; operators start under the Python one" >&2; exit 0; }; \
	chmod 0755 $@.new && mv $@.new $@

system:
	@missing=""; \
	command -v nats-server >/dev/null || missing="$$missing nats-server"; \
	command -v tmux >/dev/null || missing="$$missing tmux"; \
	command -v podman >/dev/null || missing="$$missing podman"; \
	command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing="$$missing runc"; \
	command -v catatonit >/dev/null || missing="$$missing catatonit"; \
	[ -x /bin/busybox ] || missing="$$missing busybox-static"; \
	command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing="$$missing debootstrap"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@[ -e /etc/containers/containers.conf ] || { \
	  echo "installing $(CONTAINERS_CONF) as /etc/containers/containers.conf (podman's" \
	    "defaults fail on this host; see docs/test-infrastructure.md, \"Containers\")"; \
	  $(SUDO) install -D -m 0644 $(CONTAINERS_CONF) /etc/containers/containers.conf; \
	}
	@id -u $(OPERATOR_USER) >/dev/null 2>&1 || { \
	  echo "creating the user $(OPERATOR_USER), which host-process operators run as"; \
	  $(SUDO) useradd --system --no-create-home --shell /usr/sbin/nologin $(OPERATOR_USER); \
	}
	@id -u $(TRITON_USER) >/dev/null 2>&1 || { \
	  echo "creating the user $(TRITON_USER), which the local Triton servers of a root platform run as"; \
	  $(SUDO) useradd --system --no-create-home --shell /usr/sbin/nologin $(TRITON_USER); \
	}
	@python=$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))'); \
	[ "$$(id -u)" = 0 ] || exit 0; \
	for needed in "$$python" "$(CURDIR)/Makefile"; do \
	  folder=$$(dirname "$$needed"); \
	  while [ "$$folder" != / ]; do \
	    case "$$(stat -c %A "$$folder")" in \
	      *x|*t) ;; \
	      *) echo "letting every user pass through $$folder (chmod o+x, no listing), so the" \
	           "operators of a root platform, which run as $(OPERATOR_USER), can reach $$needed"; \
	         chmod o+x "$$folder";; \
	    esac; \
	    folder=$$(dirname "$$folder"); \
	  done; \
	  runuser -u $(OPERATOR_USER) -- test -r "$$needed" || \
	    echo "warning: $(OPERATOR_USER) cannot read $$needed, so the operators of a root" \
	      "platform cannot start (see AORTA_LOCAL_RUN_AS in docs/settings.md)" >&2; \
	  runuser -u $(TRITON_USER) -- test -r "$$needed" || \
	    echo "warning: $(TRITON_USER) cannot read $$needed, so the local Triton servers of a" \
	      "root platform cannot start (see AORTA_TRITON_RUN_AS in docs/settings.md)" >&2; \
	done

# nvidia-pytriton brings the tritonserver binary and its Python backend for the local Triton
# pool; its metadata pins tritonclient extras that want protobuf < 7, and only its files are
# used, so it is installed without dependencies.
$(VENV)/.installed: pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@[ -x $(UV) ] || $(BIN)/python -m pip install -q uv==$(UV_VERSION)
	$(UV) pip install -q -p $(BIN)/python -e '.[dev,examples]'
	$(UV) pip install -q -p $(BIN)/python --no-deps nvidia-pytriton==0.7.0
	@touch $@

$(CLARA_VENV)/.installed:
	@[ -x $(CLARA_VENV)/bin/python ] || $(PYTHON) -m venv $(CLARA_VENV)
	$(UV) pip install -q -p $(CLARA_VENV)/bin/python $(CLARA_CLIENT)
	@touch $@

# The root filesystem of the Python operator image: debootstrap (about a minute, as root, once
# per host), cached in ~/.cache/aorta/images, so that tests and `make images` only import it.
python-rootfs: $(VENV)/.installed
	@[ "$$(id -u)" = 0 ] || { echo "not building the Python image's root filesystem:" \
	  "debootstrap needs root (the first container test run as root builds it)"; exit 0; }; \
	$(BIN)/python -c 'from aorta.testing.rootfs import python_base_rootfs; python_base_rootfs()'

# The Aorta image (Containerfile) in the host's podman storage, as localhost/aorta:0.1.0: a
# Debian base made by debootstrap (as root, cached), the pinned dependencies from PyPI (cached)
# and the project's wheel; skipped when up to date (docs/deploy.md, "The image").
image: setup
	CONTAINERS_CONF=$(CONTAINERS_CONF) $(BIN)/python -m aorta.testing.platform_image

# The example pipeline's operator images, in the host's podman storage (where an engine the
# platform finds sees them); skipped when up to date. The first build on a host makes the
# Python root filesystem with debootstrap (about a minute, as root) and caches it.
images: setup
	CONTAINERS_CONF=$(CONTAINERS_CONF) $(BIN)/python examples/segmentation/build_images.py

# The run's operators use containers when an engine answers or podman can start one for the
# run (examples/run_engine.py), so the images are built first wherever podman is; a failed build
# leaves the run on host processes, which it says.
run: setup
	@if command -v podman >/dev/null; then \
	  $(MAKE) --no-print-directory images || \
	    echo "the example's images could not be built; its operators will run as host processes"; \
	fi
	$(BIN)/python examples/run_main_job.py

lint: setup
	$(BIN)/ruff check shared services compat tests bench examples protos
	$(BIN)/ruff format --check shared services compat tests bench examples protos
	$(BIN)/lint-imports --config pyproject.toml

# What mypy checks and where it finds packages are in pyproject.toml ([tool.mypy]).
typecheck: setup
	$(BIN)/mypy

check: lint typecheck

test: setup check
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The whole platform as containers of the Aorta image, from deploy/ (docs/deploy.md, "The
# container deployment test"); `make test` runs it too.
test-deploy: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_deploy_containers.py

test-fast: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

protos: setup
	$(BIN)/python protos/generate.py

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CLARA_VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
