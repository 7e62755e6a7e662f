#!/usr/bin/env bash
# What watching the fleet costs the fleet: on the core lab with modules 2-8 installed, in one
# run, the machine idle (the baseline), then `kbz --lab status --watch`, then the console (in
# tmux, a log pane open), each for SECONDS s. The lab's hosts share this machine's kernel, so
# /proc/stat counts their process creations and CPU too. Prints, for each phase: process
# creations per second above the baseline (and per host), the whole machine's CPU above the
# baseline (% of one core), and kbz's own CPU (% of one core); then the ratios to the figures
# measured before the native watchers (docs/watching.md). Needs root (the lab).
#
#   SECONDS_EACH=60 bash benches/observer.sh            # the lab as it is (booted if down)
#   KBZ=target/debug/kbz bash benches/observer.sh       # another build
set -euo pipefail
cd "$(dirname "$0")/.."
EACH=${SECONDS_EACH:-60}
# Figures of the probe scripts and CLI feeds, before the native watchers (docs/watching.md).
OLD_FORKS=500
OLD_MACHINE_PCT=140

if [ -z "${KBZ:-}" ]; then
  cargo build --release -q
  KBZ=$PWD/target/release/kbz
fi
"$KBZ" lab up >/dev/null
hosts=$("$KBZ" lab status --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["hosts"]))')
if ! "$KBZ" --lab status redis --json 2>/dev/null | grep -q '"leader": *"'; then
  echo "installing modules 2-8 on the lab first" >&2
  "$KBZ" --lab install --from 2 --yes >/dev/null
fi
hz=$(getconf CLK_TCK)

forks() { awk '/^processes/ {print $2}' /proc/stat; }
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# User + system ticks of a process (its children included once they are waited for).
own() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# measure NAME PID: samples the machine (and PID when given) for EACH seconds.
measure() {
  local name=$1 pid=${2:-} f0 b0 o0 f1 b1 o1
  f0=$(forks); b0=$(busy); o0=0
  [ -n "$pid" ] && o0=$(own "$pid")
  sleep "$EACH"
  f1=$(forks); b1=$(busy); o1=0
  [ -n "$pid" ] && o1=$(own "$pid")
  python3 - "$name" "$EACH" "$hz" "$hosts" "$f0" "$f1" "$b0" "$b1" "$o0" "$o1" <<'EOF'
import sys
name, secs, hz, hosts = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
f0, f1, b0, b1, o0, o1 = map(float, sys.argv[5:])
print(f"{name} {(f1 - f0) / secs:.2f} {(b1 - b0) / hz / secs * 100:.2f} {(o1 - o0) / hz / secs * 100:.2f}")
EOF
}

work=$(mktemp -d)
session=kbz-observer-$$
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  [ -n "${watch_pid:-}" ] && kill "$watch_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

sleep 5 # let the install's or the boot's aftermath settle
measure baseline > "$work/base"

"$KBZ" --lab status --watch > /dev/null 2>&1 &
watch_pid=$!
sleep 5 # connections made, first probes done
measure status-watch "$watch_pid" > "$work/watch"
kill "$watch_pid"; wait "$watch_pid" 2>/dev/null || true; watch_pid=

tmux new-session -d -s "$session" -x 160 -y 45 "$KBZ --lab"
sleep 5
console_pid=$(tmux list-panes -t "$session" -F '#{pane_pid}')
tmux send-keys -t "$session" Enter # the selected host's logs
sleep 2
measure console "$console_pid" > "$work/console"
tmux kill-session -t "$session"

python3 - "$hosts" "$OLD_FORKS" "$OLD_MACHINE_PCT" "$work/base" "$work/watch" "$work/console" <<'EOF'
import sys
hosts, old_forks, old_pct = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
rows = [open(p).read().split() for p in sys.argv[4:]]
base_forks, base_cpu = float(rows[0][1]), float(rows[0][2])
print(f"lab: {hosts} hosts; baseline: {base_forks:.1f} process creations/s, {base_cpu:.1f}% of a core busy")
print(f"{'phase':<14}{'forks/s':>10}{'per host':>10}{'machine %':>11}{'kbz %':>8}{'forks ratio':>13}{'cpu ratio':>11}")
for name, f, cpu, own in rows[1:]:
    df = max(float(f) - base_forks, 0.0)
    dc = max(float(cpu) - base_cpu, 0.0)
    print(f"{name:<14}{df:>10.2f}{df / hosts:>10.3f}{dc:>11.1f}{float(own):>8.2f}"
          f"{old_forks / max(df, 0.01):>12.0f}x{old_pct / max(dc, 0.01):>10.0f}x")
print("goals: at most 0.1 process creation per host per second, 5% of a core for the machine, 1% for the console idle")
EOF
