# The two commands of the README, and a few helpers. Every target sets the environment up first
# (scripts/setup.sh is idempotent and returns in seconds when nothing changed).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast lint colcon clean

setup:
	bash scripts/setup.sh

# Main job on the embedded defaults (CPU, shipped data).
demo: setup
	$(VENV)/bin/molam demo --out out/demo

# Everything CI runs (.ci/run calls exactly this).
test: setup
	$(PY) -m pytest -q -ra --durations=15

# Skip the slow end-to-end tests while iterating.
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Build both packages of ros2_ws/ with colcon against the venv's ROS 2 wheels.
colcon: setup
	bash scripts/colcon_build.sh

clean:
	rm -rf .cache/build ros2_ws/build ros2_ws/install ros2_ws/log build *.egg-info
