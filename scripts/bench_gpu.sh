#!/usr/bin/env bash
# The GPU figures of the performance work, in one go, on a machine with CUDA and lewm-bench installed:
#   1. the planner's CUDA-graph rollouts against eager ones (tests/planning/test_cuda_graphs.py);
#   1b. the encoding of the frames launched from Python vs replayed as a graph, graphed and compiled, in one
#      process (results/bench/planning-encoder-graph-ab.py);
#   1c. the compiled rollouts as shipped vs inductor's max-autotune (Triton GEMM templates with fused epilogues),
#      in one process (results/bench/planning-autotune-ab.py; not yet run on a GPU);
#   2. one LeWM planning call at the paper's sizes: graphs vs eager, KV cache vs none, torch.compile, FLOPs,
#      GEMM fraction;
#   3. the planning-speed table at the paper's sizes (LeWM, PLDM, DINO-WM-style; the paper's 48x);
#   4. training throughput at the paper profile (clips/s, fp32 and bf16);
#   5. one DINO-WM-style planning call at the paper's sizes, as 2;
#   6. where the LeWM call's time goes, graphed and compiled: graph replays vs the rest, kernels per CEM
#      iteration, top kernels (scripts/profile_planning_gpu.py --compile);
#   7. (run second) the captured rollouts with autocast's weight casts in the graph against bf16 weight copies,
#      graphed and compiled, in one process (results/bench/planning-weight-casts-ab.py);
#   8. the AdaLN modulation per block and step against one product per step, graphed and compiled,
#      in one process (results/bench/planning-modulation-ab.py).
# Usage: [STEPS="plan-lewm speed"] scripts/bench_gpu.sh OUT_DIR [CALLS]
#   (writes its JSON, tables and profiles to OUT_DIR, the log to OUT_DIR/log.txt; STEPS picks steps by name,
#   default all; they run in the order below, the most wanted figures first). Where the tree was copied without its git metadata (or with stale metadata), set
#   LEWM_BENCH_COMMIT=<commit> so that every JSON names the commit the copy came from.
set -u
out=${1:?usage: scripts/bench_gpu.sh OUT_DIR [CALLS]}
calls=${2:-10}
mkdir -p "$out"
cli=(python3 -P -m lewm_bench.cli)  # -P: the installed lewm-bench, never a shadowing copy in the cwd
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, never stop the script
    local name=$1 limit=$2
    shift 2
    [[ -z ${STEPS:-} || " $STEPS " == *" $name "* ]] || return 0
    echo "=== $name ($(date -u +%T)): $*" | tee -a "$out/log.txt"
    timeout "$limit" "$@" 2>&1 | tee -a "$out/log.txt"
    echo "=== $name: exit ${PIPESTATUS[0]}" | tee -a "$out/log.txt"
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python3 \
  -P -c "import torch, lewm_bench; print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"; } \
  2>&1 | tee -a "$out/log.txt"
step graphs-test 120 python3 -P -m pytest -q -p no:cacheprovider tests/planning/test_cuda_graphs.py
step encoder-graph 240 python3 -P results/bench/planning-encoder-graph-ab.py --rounds 5 --calls 4
step autotune 420 python3 -P results/bench/planning-autotune-ab.py --rounds 5 --calls 4
step plan-lewm 240 "${cli[@]}" bench planning --profile paper --compile --calls 20 --json "$out/plan-lewm.json"
step speed 240 "${cli[@]}" run --suite planning-speed --profile paper --calls "$calls" --out "$out"
step profile 180 python3 -P scripts/profile_planning_gpu.py --profile paper --calls 20 --compile --shapes --out "$out"
step casts 300 python3 -P results/bench/planning-weight-casts-ab.py --agents lewm --rounds 5 --calls 4
step modulation 240 python3 -P results/bench/planning-modulation-ab.py --arch paper --contexts 1 --rounds 5 --calls 4 \
    --compile
step train 90 "${cli[@]}" bench train --profile paper --json "$out/train.json"
step plan-dinowm 240 "${cli[@]}" bench planning --agent dinowm --profile paper --calls 1 --batch 1 \
    --json "$out/plan-dinowm.json"
