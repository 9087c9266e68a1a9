#!/usr/bin/env bash
# Set up the project and run the default benchmark, or the test suite.
#   ./run_all.sh          set up, run the default benchmark, write reports/
#   ./run_all.sh test     set up, run the whole test suite (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")"

VENV="${HARNESS_VENV:-.venv}"
PY="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
CPU_TORCH_INDEX="https://download.pytorch.org/whl/cpu"

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

install_torch() {
    local pip="$VENV/bin/python -m pip"
    if $VENV/bin/python -c "import torch" >/dev/null 2>&1; then return; fi
    if has_gpu; then
        $pip install -q "torch==$TORCH_VERSION"
        return
    fi
    # Without a GPU, take a CPU build: ask pip which file it would pick, and if that is not a
    # CPU build (PyPI's Linux wheels bundle CUDA), use PyTorch's CPU index instead.
    local url
    url=$($pip install -q --dry-run --no-deps --report - "torch==$TORCH_VERSION" 2>/dev/null |
        $VENV/bin/python -c 'import json,sys,urllib.parse as u; r=json.load(sys.stdin); print(u.unquote(r["install"][0]["download_info"]["url"]))' || true)
    if [[ "$url" == *"+cpu"* || "$(uname -s)" == "Darwin" ]]; then
        $pip install -q "torch==$TORCH_VERSION"
    else
        echo "setup: no GPU and no CPU build of torch $TORCH_VERSION on the default index; using $CPU_TORCH_INDEX"
        $pip install -q --retries 1 --timeout 30 "torch==$TORCH_VERSION" --index-url "$CPU_TORCH_INDEX" || {
            echo "setup: could not install a CPU build of torch. Install one yourself into $VENV" \
                 "(pip install torch==$TORCH_VERSION --index-url $CPU_TORCH_INDEX), then run this again." >&2
            exit 1
        }
    fi
}

setup() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        echo "setup: creating virtualenv $VENV"
        "$PY" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    install_torch
    # Reinstall only when the project's metadata changed since the last install.
    local stamp="$VENV/.harness-installed"
    if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
        echo "setup: installing the project and its dependencies"
        "$VENV/bin/python" -m pip install -q -e ".[test]"
        # ranx compiles its numba kernels on first use (about a minute); do it once here, not in
        # every run or test. The compiled code is cached inside the virtualenv.
        "$VENV/bin/python" -c "from harness.metrics import warm_up; warm_up()"
        touch "$stamp"
    fi
    seed_offline_caches
}

# A checkout with ../shared beside it (CI, offline machines) gets writable copies of its
# pre-seeded caches, unless the user already points the libraries elsewhere.
seed_offline_caches() {
    local shared="../shared/cache"
    if [[ -z "${IR_DATASETS_HOME:-}" && -d "$shared/ir_datasets" ]]; then
        [[ -d .cache/ir_datasets ]] || { mkdir -p .cache && cp -r "$shared/ir_datasets" .cache/ir_datasets; }
        export IR_DATASETS_HOME="$PWD/.cache/ir_datasets"
    fi
    if [[ -z "${HF_HOME:-}" && -d "$shared/huggingface" ]]; then
        [[ -d .cache/huggingface ]] || { mkdir -p .cache && cp -r "$shared/huggingface" .cache/huggingface; }
        export HF_HOME="$PWD/.cache/huggingface" HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
    fi
    export HARNESS_HOME="${HARNESS_HOME:-$PWD/.cache/harness}"
}

setup
source "$VENV/bin/activate"

case "${1:-benchmark}" in
    test)
        shift
        # Test files spread over up to 4 processes (pytest-xdist; one file's tests stay together,
        # so its module fixtures are built once); HARNESS_TEST_WORKERS=1 runs them in one process.
        workers="${HARNESS_TEST_WORKERS:-$(python -c 'import os; print(min(4, os.cpu_count() or 1))')}"
        if [[ "$workers" -gt 1 ]]; then set -- -n "$workers" --dist loadfile "$@"; fi
        exec python -m pytest -q "$@"
        ;;
    benchmark)
        harness run suites/beir.yaml --dataset scifact
        harness report results/ --format markdown --format latex --format csv --format html --baseline bm25
        ;;
    *)
        echo "usage: $0 [test [pytest args...]]" >&2
        exit 2
        ;;
esac
