#!/usr/bin/env bash
# The checks a lent GPU runs, as one command sized for a 15-minute lease (docs/gpu.md):
# what the machine has, the tokenizer's and the reaction's step on CPU and CUDA measured in the same
# run, the TensorRT test, and two small-reactor trainings side by side (`small` and `base` presets,
# decoded targets, own-output rollouts, steering pairs), whose float16 weights come back in $OUT.
#
#   bash scripts/gpu_checks.sh DATA MINUTES INSTRUCTION_VECTORS
#
# DATA: a molam dataset directory holding its reaction codes (dataset.json, splits/, stats.npz,
# reaction_codes.*.npz: the motion files are not needed with --targets decoded). DEVICE=cpu runs the
# same script on a machine without a GPU (the rehearsal before spending device time).
set -u
data=${1:?dataset directory}
minutes=${2:-4}
vectors=${3:?instruction vectors (molam reactor instruction-vectors)}
device=${DEVICE:-cuda}
out=${OUT:-/tmp/molam_gpu}
runs=${RUNS:-/tmp/molam_gpu_runs}
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out" "$runs"
exec > >(tee "$out/gpu_checks.log") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tail -2
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
$py -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
$py -c "import tensorrt; print('tensorrt', tensorrt.__version__)" 2>&1 | tail -1

train() {  # name, preset, batch: one run in the background, its log beside it
  $py -m molam_ros.cli reactor train --data "$data" --out "$runs/$1" --preset "$2" --batch "$3" \
    --device "$device" --targets decoded --rollouts 2 --placement-weight 10 --steering "${STEERING:-3000}" --train-clips 0 \
    --steps "${STEPS:-40000}" --minutes "$minutes" --eval-every "${EVAL_EVERY:-500}" --threads 2 \
    --instruction-vectors "$vectors" > "$runs/$1.log" 2>&1
}
echo "== training (background, $minutes min each)"
train small small 128 &
pid_small=$!
train base base 128 &
pid_base=$!

echo "== tokenizer step"
$py -m molam_ros.cli bench tokenizer --steps 300 --repeats 5 --device "$device"
echo "== reaction step (small reactor)"
$py -m molam_ros.cli reactor bench --device cpu "$device" --steps 200 --repeats 5
echo "== TensorRT test"
timeout 120 $py -m pytest -q -p no:cacheprovider -rs tests/test_engines.py::test_tensorrt_matches_onnxruntime 2>&1 | tail -4

wait $pid_small $pid_base
for name in small base; do
  echo "== run $name"
  tail -c 1500 "$runs/$name.log" | tr '\r' '\n' | grep -v "it/s\]$" | tail -6
  mkdir -p "$out/$name"
  $py - "$runs/$name" "$out/$name" <<'PY'
import json, sys
from molam_ros.llm.reactor_weights import load_small_reactor, save_small_reactor
net, info = load_small_reactor(sys.argv[1])
info = {k: v for k, v in info.items() if k not in ("kind", "version", "model")}
save_small_reactor(net, sys.argv[2], info, half=True)
print(json.dumps(info.get("last")))
PY
  cp "$runs/$name/train_log.jsonl" "$out/$name/"
  # files come back from a lent machine at 16 MiB at most: larger weights travel in parts
  # (cat model.safetensors.part-* > model.safetensors)
  if [ "$(stat -c %s "$out/$name/model.safetensors")" -gt 16000000 ]; then
    split -b 15000000 "$out/$name/model.safetensors" "$out/$name/model.safetensors.part-"
    rm "$out/$name/model.safetensors"
  fi
done
ls -la "$out" "$out"/*
