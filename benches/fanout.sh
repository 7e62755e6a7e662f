#!/usr/bin/env bash
# Fan-out benchmark: `kbz exec` of `true` against the same fan-out with OpenSSH (`xargs -P`
# over `ssh`) and with Ansible (`ansible -m command -a true`), on the lab's generic app hosts:
# same hosts, same concurrency, strict host-key checking everywhere. Prints wall time and
# client CPU per host (user+sys of the client and all its children), the median of RUNS runs,
# and kbz's ratios. Needs root (the lab). Ansible is installed from PyPI into a venv in kbz's
# cache dir on first use.
#
#   HOSTS=48 PARALLEL=32 RUNS=5 bash benches/fanout.sh
set -euo pipefail
HOSTS=${HOSTS:-48}
PARALLEL=${PARALLEL:-32}
RUNS=${RUNS:-5}
cd "$(dirname "$0")/.."

cargo build --release -q
KBZ=$PWD/target/release/kbz
LAB=${XDG_STATE_HOME:-$HOME/.local/state}/kbz/lab
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kbz/bench
"$KBZ" lab up --hosts "$HOSTS" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk -F'\t' 'NR > 1 && $3 ~ /^app-/ {print $3, $4}' "$LAB/servers.tsv" | head -n "$HOSTS" > "$work/hosts"
count=$(wc -l < "$work/hosts")
cut -d' ' -f2 "$work/hosts" > "$work/ips"
{
  echo "[apps]"
  while read -r name ip; do echo "$name ansible_host=$ip"; done < "$work/hosts"
} > "$work/inventory.ini"
names=$(cut -d' ' -f1 "$work/hosts" | paste -sd, -)

if [ ! -x "$CACHE/ansible/bin/ansible" ]; then
  echo "installing ansible-core into $CACHE/ansible (once)" >&2
  python3 -m venv "$CACHE/ansible"
  "$CACHE/ansible/bin/pip" install -q ansible-core
fi

# Each tool's run as a script, so that /usr/bin/time measures it with all its children.
ssh_opts="-i $LAB/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$LAB/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10"
cat > "$work/kbz.sh" <<EOF
"$KBZ" --lab exec "$names" -- true >/dev/null 2>&1
EOF
cat > "$work/openssh.sh" <<EOF
xargs -P "$PARALLEL" -I{} ssh $ssh_opts root@{} true < "$work/ips"
EOF
cat > "$work/ansible.sh" <<EOF
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_NOCOLOR=1
export ANSIBLE_SSH_ARGS="-o ControlMaster=no -o UserKnownHostsFile=$LAB/known_hosts -o StrictHostKeyChecking=yes"
export ANSIBLE_LOCAL_TEMP="$work/ansible-tmp"
"$CACHE/ansible/bin/ansible" all -i "$work/inventory.ini" -u root --private-key "$LAB/id_ed25519" -f "$PARALLEL" -m command -a true >/dev/null
EOF

# One measurement: "wall cpu" in seconds.
measure() {
  /usr/bin/time -f '%e %U %S' -o "$work/time" bash "$1" >/dev/null 2>&1
  awk '{printf "%.3f %.3f\n", $1, $2 + $3}' "$work/time"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

declare -A wall cpu
for tool in kbz openssh ansible; do
  bash "$work/$tool.sh" || { echo "$tool failed its warm-up run" >&2; exit 1; }
  : > "$work/$tool"
  for _ in $(seq "$RUNS"); do measure "$work/$tool.sh" >> "$work/$tool"; done
  wall[$tool]=$(cut -d' ' -f1 "$work/$tool" | median)
  cpu[$tool]=$(cut -d' ' -f2 "$work/$tool" | median)
done

echo "fan-out of \`true\` to $count lab hosts, $PARALLEL at a time, median of $RUNS runs ($(nproc) cores)"
printf '%-10s %10s %22s\n' tool "wall (s)" "client CPU per host"
for tool in kbz openssh ansible; do
  printf '%-10s %10.2f %19.1f ms\n' "$tool" "${wall[$tool]}" "$(awk -v c="${cpu[$tool]}" -v n="$count" 'BEGIN {print c * 1000 / n}')"
done
awk -v k="${wall[kbz]}" -v o="${wall[openssh]}" -v a="${wall[ansible]}" \
  'BEGIN {printf "kbz wall / OpenSSH wall = %.2f (goal <= 0.7)\nkbz wall / Ansible wall = %.2f (goal <= 0.2)\n", k / o, k / a}'
