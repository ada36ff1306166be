# The two commands of the README, and a few helpers. Every target sets the environment up first
# (scripts/setup.sh is idempotent and returns in seconds when nothing changed).
VENV ?= .venv
PY := $(VENV)/bin/python
# Generated data and checkpoints (never committed); the same default as molam_ros (MOLAM_CACHE).
CACHE ?= $(or $(MOLAM_CACHE),$(HOME)/.cache/molam)

.PHONY: setup demo test test-fast lint colcon tokenizer ship-tokenizer bench llm bench-llm clean

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

# The shipped tokenizer (molam_ros/models/tokenizer), reproduced into the cache: 1000 generator clips
# and the real clips (held-out ones whole, the rest augmented), then the small preset on both (65 % of
# the crops from the generator): 8000 steps of one cosine schedule, then a warm restart to 11000
# (--resume); then a third stage to 15000 on the generator widened with solo actions (crouching,
# reaching, turning on the spot, side steps, jabs: what real recordings show) and the real clips
# (55 / 45 %), the relation weighted 4x and the root's drift 0.5 (2.5x): about 51 + 22 + 25 min on this
# 2-core CPU; then relation codes (4 depths of their own for the partner's place) trained alone on
# top of it (an MLP per step, width 128), its body codes frozen (15 min); then the held-out figures and
# the 10-minute stream.
# `make ship-tokenizer` packages the result into molam_ros/models/tokenizer.
TOK_STEPS ?= 8000
TOK_STEPS2 ?= 11000
TOK_STEPS3 ?= 15000
TOK_REL_STEPS ?= 6000
TOKENIZER_DATA = $(CACHE)/data/synth1000 $(CACHE)/data/real
TOKENIZER_DATA3 = $(CACHE)/data/synth1000s $(CACHE)/data/real
tokenizer: setup
	$(VENV)/bin/molam data synth --out $(CACHE)/data/synth1000 --count 1000 --seed 0
	$(VENV)/bin/molam data synth --out $(CACHE)/data/synth1000s --count 1000 --seed 0 --solo-actions 0.5
	$(VENV)/bin/molam data real --out $(CACHE)/data/real --variants 24 --seed 0
	$(VENV)/bin/molam tokenizer train --preset small --data $(TOKENIZER_DATA) --weights 0.65 0.35 --steps $(TOK_STEPS) --out $(CACHE)/tokenizer/small
	$(VENV)/bin/molam tokenizer train --preset small --data $(TOKENIZER_DATA) --weights 0.65 0.35 --out $(CACHE)/tokenizer/small --resume --steps $(TOK_STEPS2)
	$(VENV)/bin/molam tokenizer train --preset small --data $(TOKENIZER_DATA3) --weights 0.55 0.45 --out $(CACHE)/tokenizer/small --resume --steps $(TOK_STEPS3) \
		--rel-weight 4 --traj-weight 0.5
	$(VENV)/bin/molam tokenizer train --preset small --relation-codes 4 --relation-net step --relation-width 128 --init $(CACHE)/tokenizer/small --freeze-body \
		--data $(CACHE)/data/synth1000 $(CACHE)/data/synth1000s --out $(CACHE)/tokenizer/relation --steps $(TOK_REL_STEPS) --rel-weight 4 --traj-weight 0.5
	$(VENV)/bin/molam tokenizer eval $(CACHE)/tokenizer/relation --data $(CACHE)/data/synth1000 $(TOKENIZER_DATA3) --long-stream 10

ship-tokenizer: setup
	$(VENV)/bin/molam tokenizer ship $(CACHE)/tokenizer/relation --data $(CACHE)/data/synth1000 $(TOKENIZER_DATA3) --out molam_ros/models/tokenizer \
		--command "make tokenizer TOK_STEPS=$(TOK_STEPS) TOK_STEPS2=$(TOK_STEPS2) TOK_STEPS3=$(TOK_STEPS3) TOK_REL_STEPS=$(TOK_REL_STEPS)" --command "make ship-tokenizer"

# Speed of every tokenizer engine against torch eager, on the shipped tokenizer.
bench: setup
	$(VENV)/bin/molam export --out $(CACHE)/export/bench
	$(VENV)/bin/molam bench tokenizer --export $(CACHE)/export/bench

# The default motion-language model on the default tokenizer's data (after `make tokenizer`): stage 2,
# stage 3, then the quality table on held-out clips. About 10-14 s per stage 2 step on this 2-core CPU.
LLM_STEPS2 ?= 200
LLM_STEPS3 ?= 60
llm: setup
	$(VENV)/bin/molam llm train --stage 2 --preset small --steps $(LLM_STEPS2) --data $(CACHE)/data/synth1000 --out $(CACHE)/llm/stage2
	$(VENV)/bin/molam llm train --stage 3 --preset small --steps $(LLM_STEPS3) --data $(CACHE)/data/synth1000 --init $(CACHE)/llm/stage2 --out $(CACHE)/llm/stage3
	$(VENV)/bin/molam llm eval --data $(CACHE)/data/synth1000 --checkpoint $(CACHE)/llm/stage3 --classifier $(CACHE)/llm/interaction_classifier.npz --json $(CACHE)/llm/eval.json

# Speed of the streaming reaction (depth head vs token by token) with the default backbone.
bench-llm: setup
	$(VENV)/bin/molam bench llm --threads 2

clean:
	rm -rf .cache/build ros2_ws/build ros2_ws/install ros2_ws/log build *.egg-info
