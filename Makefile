# leo_ros: set-up, build, test and demo from the repository alone.
#   make demo   set up if needed, then run the main job
#   make test   set up if needed, then run every test (unit, ROS, end-to-end, lint)
# ROS_DISTRO=jazzy make test does the same against ROS 2 Jazzy wheels in .venv-jazzy.

ROS_DISTRO ?= kilted
ifeq ($(ROS_DISTRO),kilted)
VENV ?= .venv
else ifeq ($(ROS_DISTRO),jazzy)
VENV ?= .venv-jazzy
else
$(error ROS_DISTRO=$(ROS_DISTRO): the wheel set-up knows kilted and jazzy; on a machine with \
	ROS 2 installed, build leo_ros with colcon in a workspace (README))
endif

# The torch CPU file on disk is for CPython 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BUILD := build/$(ROS_DISTRO)
VENV_ABS := $(abspath $(VENV))
STAMP := $(VENV)/.leo-requirements
# Scrub the wheels' bootstrap guard so every child re-execs with its own library path.
RUN := env -u _ROS_WHEELS_BOOTSTRAP_COMPLETE AMENT_PREFIX_PATH=$(VENV_ABS) \
	CMAKE_PREFIX_PATH=$(VENV_ABS) PATH=$(VENV_ABS)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: all setup build test demo lint clean distclean

all: build

setup: $(STAMP)

$(STAMP): requirements/common.txt requirements/ros-$(ROS_DISTRO).txt requirements/no-deps.txt \
		scripts/system_deps.sh
	scripts/system_deps.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q torch==2.13.0
	$(VENV)/bin/python -m pip install -q -r requirements/common.txt \
		-r requirements/ros-$(ROS_DISTRO).txt
	$(VENV)/bin/python -m pip install -q --no-deps -r requirements/no-deps.txt
	touch $@

# Configure once, then rebuild and reinstall incrementally (Python sources are symlinked).
# interfaces/build.sh then builds tf2_msgs, nav2_msgs and control_msgs from interfaces/, each
# only when the real package cannot be imported (the ROS wheels lack them).
# flock: concurrent builds of the same tree wait for each other.
build: $(STAMP)
	@mkdir -p $(BUILD)
	@flock $(BUILD).lock sh -c '\
	  { test -f $(BUILD)/Makefile || $(RUN) cmake -S . -B $(BUILD) \
	      -DCMAKE_INSTALL_PREFIX=$(VENV_ABS) -DCMAKE_BUILD_TYPE=Release \
	      -DPython3_EXECUTABLE=$(VENV_ABS)/bin/python -DBUILD_TESTING=OFF \
	      -DLEO_SYMLINK_INSTALL=ON \
	      -DCMAKE_PROJECT_INCLUDE=$(abspath cmake/prune_dangling_includes.cmake); } \
	    > $(BUILD).configure.log 2>&1 || { cat $(BUILD).configure.log; exit 1; }; \
	  $(RUN) cmake --build $(BUILD) -j2 > $(BUILD).build.log 2>&1 \
	    || { cat $(BUILD).build.log; exit 1; }; \
	  $(RUN) cmake --install $(BUILD) > $(BUILD).install.log 2>&1 \
	    || { cat $(BUILD).install.log; exit 1; }; \
	  $(RUN) interfaces/build.sh $(VENV_ABS)/bin/python $(VENV_ABS) $(BUILD)/interfaces \
	      -DCMAKE_PROJECT_INCLUDE=$(abspath cmake/prune_dangling_includes.cmake)'
	@echo "leo_ros built and installed into $(VENV) ($(ROS_DISTRO))"

test: build
	$(RUN) $(VENV)/bin/python -m pytest test $(PYTEST_ARGS)

lint: build
	$(RUN) $(VENV)/bin/python -m pytest test/test_lint.py

demo: build
	$(RUN) $(VENV)/bin/leo-demo

clean:
	rm -rf build

distclean: clean
	rm -rf .venv .venv-jazzy
