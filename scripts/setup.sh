#!/usr/bin/env bash
# Creates ./.venv and installs lewm-bench into it. Safe to run again: it only installs what is missing.
#
# torch is installed first and on its own, so that nothing later pulls another build:
#   - with an NVIDIA GPU (nvidia-smi works): the default (CUDA) build of torch;
#   - without one: a CPU build. If the build pip would pick by default is not a CPU build (it would
#     pull the multi-GB CUDA wheels), the PyTorch CPU index is used instead.
# Override the interpreter with PYTHON=..., the location with VENV=....
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
STAMP="$VENV/.lewm-bench-installed"

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
pip_() { "$PY" -m pip --disable-pip-version-check -q "$@"; }

if ! "$PY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found: installing torch==$TORCH_VERSION (CUDA build)"
    pip_ install "torch==$TORCH_VERSION"
  else
    report=$(mktemp)
    pip_ install --dry-run --ignore-installed --report "$report" "torch==$TORCH_VERSION" 2>/dev/null || true
    if "$PY" - "$report" <<'PYEOF'
import json, sys
try:
    items = json.load(open(sys.argv[1]))["install"]
except Exception:
    sys.exit(1)
names = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in items}
cuda = [n for n in names if n.startswith("nvidia-") or n.startswith("cuda-")]
sys.exit(0 if "+cpu" in names.get("torch", "") and not cuda else 1)
PYEOF
    then
      echo "setup: no GPU: installing torch==$TORCH_VERSION (CPU build found by pip)"
      pip_ install "torch==$TORCH_VERSION"
    else
      echo "setup: no GPU: installing torch==$TORCH_VERSION from the PyTorch CPU index"
      pip_ install "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
    fi
    rm -f "$report"
  fi
fi
echo "setup: installing lewm-bench and its dependencies into $VENV"
pip_ install -e ".[dev]"
touch "$STAMP"
