#!/usr/bin/env bash
# Try the Keras trainer on several workers on this machine (MultiWorkerMirroredStrategy):
#   docs/keras_local_workers.sh N OUT_DIR/train.py [train.py flags...]
# starts N workers on 127.0.0.1 (free ports), each with its TF_CONFIG; worker 0 (the chief)
# prints to the terminal and writes --out, the others print to WORKER_LOGS (default: a new
# temporary folder). Ctrl-C or a failing worker stops them all; the exit code is the first
# failing worker's, 0 when all succeed. PYTHON names the interpreter (default: python).
set -u
if [ $# -lt 2 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 N OUT_DIR/train.py [train.py flags...]" >&2
    exit 2
fi
count=$1
shift
python=${PYTHON:-python}
logs=${WORKER_LOGS:-$(mktemp -d)}
ports=$("$python" - "$count" <<'EOF'
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
) || exit 2
workers=$(printf '"127.0.0.1:%s",' $ports)
workers="[${workers%,}]"
config() {
    printf '{"cluster": {"worker": %s}, "task": {"type": "worker", "index": %d}}' "$workers" "$1"
}
pids=()
stop() {
    kill "${pids[@]}" 2>/dev/null
    wait
}
trap 'stop; exit 130' INT TERM
for ((i = 1; i < count; i++)); do
    TF_CONFIG=$(config "$i") "$python" "$@" >"$logs/worker$i.log" 2>&1 &
    pids+=($!)
done
[ "$count" -gt 1 ] && echo "workers 1-$((count - 1)) print to $logs/worker*.log" >&2
TF_CONFIG=$(config 0) "$python" "$@" &
pids=($! "${pids[@]}")
status=0
for _ in "${pids[@]}"; do
    wait -n
    code=$?
    if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then
        status=$code
        stop
    fi
done
exit "$status"
