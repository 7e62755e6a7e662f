#!/bin/bash
# Module 2, base: names, clock, sysctls. Idempotent: the /etc/hosts block is replaced whole.
set -euo pipefail

echo "::step hosts file"
begin="# BEGIN kbz inventory (module 2)"
end="# END kbz inventory"
block=$(
    echo "$begin"
    for pair in $KBZ_ALL_HOSTS; do
        printf '%s\t%s\n' "${pair#*=}" "${pair%%=*}"
    done
    echo "$end"
)
tmp=$(mktemp)
# Everything outside our block stays as it was.
awk -v b="$begin" -v e="$end" '$0==b{skip=1} !skip{print} $0==e{skip=0}' /etc/hosts >"$tmp"
printf '%s\n' "$block" >>"$tmp"
if ! cmp -s "$tmp" /etc/hosts; then
    cat "$tmp" >/etc/hosts
    echo "/etc/hosts: $(echo "$KBZ_ALL_HOSTS" | wc -w) hosts of ENV $KBZ_ENV"
else
    echo "/etc/hosts already up to date"
fi
rm -f "$tmp"

echo "::step time sync"
synced=$(timedatectl show -p NTPSynchronized --value 2>/dev/null || echo unknown)
echo "clock synchronised: $synced ($(date -u +%FT%TZ))"

echo "::step sysctls"
cat >/etc/sysctl.d/60-kbz.conf <<'CONF'
# Written by kbz module 2. Keepalived and HAProxy bind the floating address on the backup too.
net.ipv4.ip_nonlocal_bind = 1
# Redis forks for snapshots and replication.
vm.overcommit_memory = 1
net.core.somaxconn = 1024
CONF
while read -r key _ value; do
    case "$key" in '' | '#'*) continue ;; esac
    if sysctl -q -w "$key=$value" 2>/dev/null; then
        echo "sysctl $key = $value"
    else
        # A container cannot change kernel-wide settings; its host decides them.
        echo "sysctl $key: not settable here (kept in /etc/sysctl.d for a real host); now $(sysctl -n "$key" 2>/dev/null || echo '?')"
    fi
done </etc/sysctl.d/60-kbz.conf
