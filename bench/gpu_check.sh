#!/usr/bin/env bash
# bench/gpu_check.sh: the GPU measurements of issues 15 and 16 in one command, for a lent
# GPU machine (one H200 here: 16 cores, python3 with torch 2.11 and torchvision, no network,
# no lark, pydantic or TensorFlow). Each check runs under its own time limit (`timeout`, cut
# to what GPU_CHECK_BUDGET has left); a check that fails or times out gets that in its row
# and the script goes on:
#   env          bench/gpu_env.py: versions, the GPU (torch, nvidia-smi), the compile path
#   tvr-amp      bench/torch_vs_reference.py --device cuda --amp --channels-last, pairs a b r
#   tvr-fp32     the same in float32, NCHW
#   profile      bench/gpu_profile_step.py: torch.profiler summary of one AlexNet step
#   e2e-amp      bench/end_to_end.py --amp
#                --channels-last: AlexNet and ResNet-50 on the embedded data, trainer vs
#                bare step
#   e2e-mini     bench/end_to_end.py --amp --channels-last on mini and mini-jpeg (trainer vs
#                bare step vs torchvision's reference loop)
#   decode       bench/gpu_decode.py --device cuda: --decode gpu vs --decode cpu
#   e2e-compile  the same as e2e-amp with --compile, AlexNet only (compiling takes time)
#   tvr-compile  bench/torch_vs_reference.py --amp --channels-last --compile
#   keras        end_to_end.py --backends keras: skipped where TensorFlow is not installed
# It then prints one Markdown table and writes it into bench/RESULTS.md between the markers
# of bench/gpu_check_report.py (rows of checks not run this time are kept). Device checks
# take about 6 minutes in all; GPU_CHECK_BUDGET (420 s) bounds them.
#
# Once before, in the checkout the device tool sends (the lead's, not a helper's worktree;
# the branch merged): `bash bench/gpu_wheels.sh` (the compile path's wheels into the
# git-ignored .whl/, about 3 MB). The device call, `run` tool (leaves about 5 of the 15
# minutes for a rerun):
#   command:   bash bench/gpu_check.sh
#   carry:     [".whl"]
#   timeout_s: 480
# The device works on a copy of the checkout: what comes back is $OUT/gpu_check_section.md
# (the table) and $OUT/gpu_check_logs.tar.gz (every check's log, rows.jsonl, the AlexNet
# step's Chrome trace). Put the section into this checkout's bench/RESULTS.md with
#   bash bench/gpu_check.sh --apply FILES_AT/gpu_check_section.md   (files_at of the reply)
# A rerun of some checks (their rows replace only theirs once applied):
#   command: GPU_CHECK_ONLY="e2e-compile decode" GPU_CHECK_BUDGET=200 bash bench/gpu_check.sh
#
# `bash bench/gpu_check.sh --dry-run` runs every check's CPU-sized variant (device cpu, 1-2
# steps, tiny batches; about 3 minutes on 2 cores) to test the script on a machine without a
# GPU; it writes the section into a copy of RESULTS.md in its work folder (or
# GPU_CHECK_RESULTS), never into bench/RESULTS.md.
# Environment: GPU_CHECK_ONLY (names of the checks to run), GPU_CHECK_BUDGET (seconds for all
# checks), GPU_CHECK_RESULTS (the RESULTS.md to write), PYTHON (default: .venv/bin/python
# where it exists, else python3), OUT (where the section and the logs go, when set).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
REPORT=bench/gpu_check_report.py

if [ "${1:-}" = --apply ]; then
    [ -f "${2:-}" ] || { echo "usage: $0 --apply SECTION.md" >&2; exit 2; }
    exec "${PYTHON:-python3}" "$REPORT" write "$2" bench/RESULTS.md
fi
DRY=0
case "${1:-}" in
    --dry-run) DRY=1 ;;
    "") ;;
    *) echo "usage: $0 [--dry-run | --apply SECTION.md]" >&2; exit 2 ;;
esac

if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=$ROOT/.venv/bin/python
fi
BUDGET=${GPU_CHECK_BUDGET:-420}
RESERVE=15  # seconds kept for the table and the copies at the end
START=$(date +%s)
DEADLINE=$((START + BUDGET))
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
LOGS=$WORK/logs
ROWS=$WORK/rows.jsonl
mkdir -p "$LOGS"
NO_DEVICE=""  # why the device checks are skipped, once the env check failed
STATUS=""  # the status of the last check run
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT"

# The compile path's packages: from the carried wheels where python lacks them.
if ! "$PYTHON" -c "import lark, pydantic" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$ROOT:/tmp/site"
fi
# archdsl.backends is the folder backends/ (pyproject's package-dir); without an editable
# install the import needs the link that a worktree has.
if ! "$PYTHON" -c "import archdsl.backends" 2>/dev/null && [ ! -e archdsl/backends ]; then
    ln -s ../backends archdsl/backends
fi

if [ "$DRY" = 1 ]; then
    DEV=cpu
    TVR=(--device cpu --pairs abr --batch 2 --steps 2 --warmup 1)
    PROFILE=(--device cpu --batch 2 --warmup 1 --trace "$LOGS/alexnet_step.trace.json")
    E2E=(--device cpu --workers 1 --steps 1 2)
    # AlexNet's and ResNet-50's trainers validate 1,000 images and torch.compile takes
    # minutes: on 2 cores the dry run takes the small model through the same scripts
    E2E_CASES=(mini)
    MINI_CASES=(mini-jpeg)
    COMPILE_CASES=(mini)
    DECODE=(--device cpu --images 16 --batch 8 --workers 1 --repeats 1)
    RESULTS=${GPU_CHECK_RESULTS:-$WORK/RESULTS.md}
    [ -f "$RESULTS" ] || cp bench/RESULTS.md "$RESULTS"
else
    DEV=cuda
    TVR=(--device cuda --pairs abr --steps 30 --warmup 5)
    PROFILE=(--device cuda --warmup 5 --trace "$LOGS/alexnet_step.trace.json")
    E2E=(--device cuda --workers 8)
    E2E_CASES=(alexnet resnet50)
    MINI_CASES=(mini mini-jpeg)
    COMPILE_CASES=(alexnet)
    DECODE=(--device cuda --images 1024 --batch 256 --workers 8 --repeats 3)
    RESULTS=${GPU_CHECK_RESULTS:-bench/RESULTS.md}
fi

wanted() {  # wanted CHECK: whether GPU_CHECK_ONLY (when set) names it
    [ -z "${GPU_CHECK_ONLY:-}" ] || [[ " $GPU_CHECK_ONLY " == *" $1 "* ]]
}

record() {  # record CHECK STATUS SECONDS COMMAND...: a row of the table
    local check=$1 status=$2 seconds=$3
    shift 3
    "$PYTHON" "$REPORT" record "$ROWS" "$check" "$status" "$seconds" "$LOGS/$check.log" \
        "${@/#"$PYTHON"/python}"
    echo "== $check: $status (${seconds} s)"
}

skip() {  # skip CHECK REASON COMMAND...
    local check=$1 reason=$2
    shift 2
    wanted "$check" && record "$check" "skipped: $reason" 0 "$@"
}

check() {  # check CHECK LIMIT COMMAND...: run it under min(LIMIT, what the budget has left)
    local check=$1 limit=$2 left rc status began
    shift 2
    wanted "$check" || return 0
    left=$((DEADLINE - RESERVE - $(date +%s)))
    if [ -n "$NO_DEVICE" ]; then
        record "$check" "skipped: $NO_DEVICE" 0 "$@"
        return 0
    elif [ "$left" -lt 10 ]; then
        record "$check" "skipped: the ${BUDGET} s budget (GPU_CHECK_BUDGET) is spent" 0 "$@"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $check (at most $limit s): $*"
    began=$(date +%s)
    timeout -k 10 "$limit" "$@" >"$LOGS/$check.log" 2>&1
    rc=$?
    case $rc in
        0) status=ok ;;
        124 | 137) status="timed out after $limit s" ;;
        *) status="failed (exit $rc)" ;;
    esac
    tail -n 3 "$LOGS/$check.log"
    STATUS=$status
    record "$check" "$status" "$(($(date +%s) - began))" "$@"
}

check env 60 "$PYTHON" bench/gpu_env.py --device "$DEV"
if [ "$DRY" = 0 ] && wanted env && [ "$STATUS" != ok ]; then
    NO_DEVICE="the env check failed: no usable CUDA device"
fi

check tvr-amp 90 "$PYTHON" bench/torch_vs_reference.py "${TVR[@]}" --amp --channels-last
check tvr-fp32 90 "$PYTHON" bench/torch_vs_reference.py "${TVR[@]}"
check profile 60 "$PYTHON" bench/gpu_profile_step.py "${PROFILE[@]}" --amp --channels-last
check e2e-amp 120 "$PYTHON" bench/end_to_end.py "${E2E[@]}" --amp --channels-last \
    --backends torch --cases "${E2E_CASES[@]}"
check e2e-mini 120 "$PYTHON" bench/end_to_end.py "${E2E[@]}" --amp --channels-last \
    --backends torch --cases "${MINI_CASES[@]}"
check decode 60 "$PYTHON" bench/gpu_decode.py "${DECODE[@]}"
check e2e-compile 150 "$PYTHON" bench/end_to_end.py "${E2E[@]}" --amp --channels-last \
    --compile --backends torch --cases "${COMPILE_CASES[@]}"
check tvr-compile 150 "$PYTHON" bench/torch_vs_reference.py "${TVR[@]}" --amp \
    --channels-last --compile
KERAS=(bench/end_to_end.py "${E2E[@]}" --backends keras --cases mini alexnet)
[ "$DRY" = 1 ] && KERAS=(bench/end_to_end.py "${E2E[@]}" --backends keras --cases mini)
if "$PYTHON" -c "import tensorflow" >/dev/null 2>&1; then
    check keras 120 "$PYTHON" "${KERAS[@]}"
else
    skip keras "TensorFlow not installed on this machine" "${KERAS[@]}"
fi

MACHINE="Run of $(date -u '+%Y-%m-%d %H:%M') UTC on $(hostname): $(nproc) cores"
MACHINE="$MACHINE, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
[ "$DRY" = 1 ] && MACHINE="DRY RUN (--dry-run: CPU-sized, not figures). $MACHINE"
MACHINE="$MACHINE. Logs: gpu_check_logs.tar.gz beside this section in \$OUT."
if [ -s "$ROWS" ]; then
    "$PYTHON" "$REPORT" render "$ROWS" "$MACHINE" >"$WORK/gpu_check_section.md"
    "$PYTHON" "$REPORT" write "$WORK/gpu_check_section.md" "$RESULTS"
    echo
    cat "$WORK/gpu_check_section.md"
    echo "written into $RESULTS"
fi
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    [ -f "$WORK/gpu_check_section.md" ] && cp "$WORK/gpu_check_section.md" "$OUT/"
    tar -czf "$OUT/gpu_check_logs.tar.gz" -C "$WORK" logs rows.jsonl 2>/dev/null
    echo "section and logs in $OUT"
fi
echo "work folder: $WORK; $(($(date +%s) - START)) s in all"
