#!/usr/bin/env bash
# Build the ros2_ws/ colcon workspace (molam_msgs + molam_ros) against the venv's ROS 2 wheels,
# the way `colcon build` runs on a real ROS 2 install (where the venv part is not needed).
#
#   bash scripts/colcon_build.sh [BASE_DIR]   # BASE_DIR holds build/ install/ log/ (default ros2_ws)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOLAM_VENV:-$ROOT/.venv}"
BASE="${1:-$ROOT/ros2_ws}"
export PATH="$VENV/bin:$PATH"
# The wheels install ROS 2 into the venv prefix; colcon's ament packages find it through this.
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
cd "$ROOT/ros2_ws"
colcon --log-base "$BASE/log" build \
  --base-paths src \
  --build-base "$BASE/build" --install-base "$BASE/install" \
  --event-handlers console_direct+ \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF
