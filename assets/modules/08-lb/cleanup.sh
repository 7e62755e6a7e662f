#!/bin/bash
# Module 8 cleanup: no HAProxy or keepalived running or enabled, Debian's configs back, the
# floating address released.
set -euo pipefail
echo "::step stop"
systemctl disable -q --now keepalived haproxy 2>/dev/null || true
pkill -x keepalived 2>/dev/null || true
pkill -x haproxy 2>/dev/null || true
echo "::step configs"
for f in /etc/haproxy/haproxy.cfg /etc/keepalived/keepalived.conf; do
    if [ -e "$f.debian" ]; then mv -f "$f.debian" "$f"; else rm -f "$f"; fi
done
vip=${KBZ_VAR_HAPROXY_VIP%/*}
dev=$(ip -o -4 addr show | awk -v v="$vip" '{split($4, a, "/")} a[1] == v {print $2; exit}')
[ -n "$dev" ] && ip addr del "$KBZ_VAR_HAPROXY_VIP" dev "$dev" 2>/dev/null || true
left=$({ pgrep -x haproxy || true; pgrep -x keepalived || true; } | wc -l)
echo "load balancer removed ($left process(es) left)"
[ "$left" = 0 ]
