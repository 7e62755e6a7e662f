#!/bin/bash
# Module 4 cleanup: no Redis process, no data, no enabled unit, Debian's configs back.
set -euo pipefail
echo "::step stop"
systemctl disable -q --now redis-sentinel redis-server 2>/dev/null || true
# Anything started outside systemd too.
pkill -x redis-server 2>/dev/null || true
pkill -x redis-sentinel 2>/dev/null || true
echo "::step data"
rm -rf /var/lib/redis/* /var/log/redis/*
echo "::step configs"
for f in redis.conf sentinel.conf; do
    if [ -e "/etc/redis/$f.debian" ]; then
        mv -f "/etc/redis/$f.debian" "/etc/redis/$f"
    fi
done
rm -f /etc/kbz/secrets/redis_password
left=$({ pgrep -x redis-server || true; pgrep -x redis-sentinel || true; } | wc -l)
echo "redis removed ($left process(es) left)"
[ "$left" = 0 ]
