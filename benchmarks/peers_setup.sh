#!/usr/bin/env bash
# Install the peer libraries that benchmarks/bench_hooks.py --peers compares steerlab with.
#
# Two virtual environments, both outside the repository, so steerlab's own environment is
# never changed:
#   /work/bench-venv-peers   nnsight, TransformerLens, steering-vectors. Created with
#                            --system-site-packages: it reuses the system torch 2.13 (CPU),
#                            transformers 5.24 and the editable steerlab, and adds the peers.
#   /work/bench-venv-repeng  repeng 0.4.0, which imports np.float_ and so needs numpy<2; a
#                            fully separate venv with its own torch/transformers.
#
# Usage: bash benchmarks/peers_setup.sh   (override the locations with PEERS_VENV / REPENG_VENV)
set -euo pipefail

PY=${PY:-python3.11}
PEERS_VENV=${PEERS_VENV:-/work/bench-venv-peers}
REPENG_VENV=${REPENG_VENV:-/work/bench-venv-repeng}

# --- nnsight, TransformerLens, steering-vectors -------------------------------------------
"$PY" -m venv --system-site-packages "$PEERS_VENV"
"$PEERS_VENV/bin/pip" install psutil nnsight==0.8.1 transformer-lens==4.3.0
# steering-vectors pins transformers<5 but works on 5.24; --no-deps keeps transformers 5.24.
"$PEERS_VENV/bin/pip" install --no-deps steering-vectors==0.12.2
"$PEERS_VENV/bin/python" -c "import torch, transformers, numpy; print('peers venv:', torch.__version__, transformers.__version__, numpy.__version__)"

# --- repeng (numpy<2) ----------------------------------------------------------------------
"$PY" -m venv "$REPENG_VENV"
"$REPENG_VENV/bin/pip" install torch==2.13.0   # the CPU wheel
"$REPENG_VENV/bin/pip" install numpy==1.26.4 pandas==2.3.3 datasets==4.8.5 pyarrow==21.0.0 \
    transformers==5.24.0 psutil repeng==0.4.0
"$REPENG_VENV/bin/python" -c "import torch, transformers, numpy, repeng; print('repeng venv:', torch.__version__, transformers.__version__, numpy.__version__)"
