#!/usr/bin/env bash
# Try the Keras trainer on several workers on this machine (MultiWorkerMirroredStrategy):
#   docs/keras_local_workers.sh N OUT_DIR/train.py [train.py flags...]
# starts N workers on 127.0.0.1 (free ports), each with its TF_CONFIG; worker 0 (the chief)
# prints to the terminal and writes --out, the others print to WORKER_LOGS (default: a new
# temporary folder). Ctrl-C reaches every worker (they share the terminal's process group):
# they stop after the same step and the chief saves OUT/last.npz (a worker that exits 130 has
# stopped that way, so the others are left to finish); a second Ctrl-C stops them at once, and
# a worker failing otherwise stops the others. The exit code is the first non-zero worker's
# (130 after Ctrl-C), 0 when all succeed. PYTHON names the interpreter (default: python).
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
interrupted=0
stop() {
    kill "${pids[@]}" 2>/dev/null
}
on_int() {
    if [ "$interrupted" -eq 1 ]; then
        stop
        wait
        exit 130
    fi
    interrupted=1
    echo "Ctrl-C: every worker checkpoints after the same step (Ctrl-C again stops them now)" >&2
}
trap on_int INT
trap 'stop; wait; exit 143' TERM
for ((i = 1; i < count; i++)); do
    TF_CONFIG=$(config "$i") "$python" "$@" >"$logs/worker$i.log" 2>&1 &
    pids+=($!)
done
[ "$count" -gt 1 ] && echo "workers 1-$((count - 1)) print to $logs/worker*.log" >&2
TF_CONFIG=$(config 0) "$python" "$@" &
pids=($! "${pids[@]}")
# poll rather than `wait -n`: bash drops from `wait -n` a worker that ends beside another
status=0
codes=()
running=$count
while [ "$running" -gt 0 ]; do
    running=0
    for i in "${!pids[@]}"; do
        [ -n "${codes[i]:-}" ] && continue
        if kill -0 "${pids[i]}" 2>/dev/null; then
            running=$((running + 1))
            continue
        fi
        wait "${pids[i]}"
        codes[i]=$?
        if [ "${codes[i]}" -ne 0 ] && [ "$status" -eq 0 ]; then
            status=${codes[i]}
            [ "$status" -ne 130 ] && stop
        fi
    done
    [ "$running" -gt 0 ] && sleep 0.2
done
exit "$status"
