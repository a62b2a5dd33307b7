#!/usr/bin/env bash
# The GPU check of the CUDA backend, for a machine with an NVIDIA GPU (see ../shared/tools/README.md).
#
#   bench/cuda_check.sh [--n N] [--reps R]      (from anywhere; it works in the repository root)
#
# 1. installs the carried wheels (.whl/*.whl: PyCUDA and what it and gencomp need) into $SITE;
# 2. checks `import pycuda.autoinit` and prints the device, nvcc and `gencomp info`;
# 3. runs tests/test_cuda.py: the nvcc builds, and every runtime test on the GPU against numpy;
# 4. runs bench/cuda_check.py: a fused elementwise expression and a sum over 1e8 float32 elements,
#    timed on the device, against the measured device-to-device copy bandwidth.
# Results (the test log, the table and JSON) also go to $OUT when it is set (the device tool's folder).
# Exit status: 0 when the tests pass and the benchmark's results match numpy.

set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
SITE=${SITE:-/tmp/site}
LOGS=${OUT:-$(mktemp -d /tmp/gencomp-cuda-check-XXXXXX)}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1
export GENCOMP_CACHE_DIR=${GENCOMP_CACHE_DIR:-$(mktemp -d /tmp/gencomp-cuda-cache-XXXXXX)}
chmod 700 "$GENCOMP_CACHE_DIR" 2> /dev/null || true

step() { printf '\n=== %s\n' "$*"; }

step "wheels"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl \
        || { echo "FAIL: installing .whl/*.whl into $SITE"; exit 1; }
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    echo "no .whl/ folder: using the installed packages"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

step "device"
nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader \
    || echo "(nvidia-smi failed)"
command -v nvcc > /dev/null && nvcc --version | tail -n 2 || echo "nvcc not on PATH"
python3 - <<'EOF' || { echo "FAIL: import pycuda.autoinit"; exit 1; }
import pycuda.autoinit  # noqa: F401  (creates a context on device 0)
import pycuda.driver as drv
dev = pycuda.autoinit.device
free, total = drv.mem_get_info()
print(f"pycuda {__import__('pycuda').VERSION_TEXT}: {dev.name()}, compute {dev.compute_capability()}, "
      f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} free), driver {drv.get_driver_version()}")
EOF
python3 -m gencomp info || echo "(gencomp info failed)"

step "tests/test_cuda.py"
python3 -c "import pytest" 2> /dev/null || { echo "FAIL: pytest is not installed (carry its wheel in .whl/)"; exit 1; }
GENCOMP_REQUIRE_GPU=1 python3 -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider 2>&1 \
    | tee "$LOGS/test_cuda.log"
tests=$?

step "benchmark"
python3 bench/cuda_check.py --json "$LOGS/cuda_check.json" "$@" 2>&1 | tee "$LOGS/cuda_check.txt"
bench=$?

step "summary"
echo "tests: $([ $tests -eq 0 ] && echo passed || echo "FAILED (rc $tests)")"
echo "benchmark: $([ $bench -eq 0 ] && echo "ran, results match numpy" || echo "FAILED (rc $bench)")"
echo "logs: $LOGS"
[ $tests -eq 0 ] && [ $bench -eq 0 ]
