#!/bin/bash
# Module 3 cleanup: no Patroni, PostgreSQL (of Patroni) or etcd process, data or enabled unit.
set -euo pipefail
echo "::step stop"
systemctl disable -q --now patroni 2>/dev/null || true
# Patroni's unit kills only Patroni (KillMode=process); its PostgreSQL may outlive it.
pkill -u postgres -x postgres 2>/dev/null || true
systemctl disable -q --now etcd 2>/dev/null || true
for _ in $(seq 20); do
    pgrep -u postgres -x postgres >/dev/null || pgrep -x etcd >/dev/null || break
    sleep 0.5
done
pkill -KILL -u postgres -x postgres 2>/dev/null || true
pkill -KILL -x etcd 2>/dev/null || true
echo "::step data"
rm -rf /var/lib/postgresql/15/kbz /var/lib/etcd/kbz /var/lib/postgresql/.pgpass_patroni
echo "::step configs"
rm -f /etc/patroni/config.yml
[ -e /etc/default/etcd.debian ] && mv -f /etc/default/etcd.debian /etc/default/etcd
rm -f /etc/kbz/secrets/pg_superuser_password /etc/kbz/secrets/pg_replication_password /etc/kbz/secrets/pg_rewind_password
left=$({ pgrep -u postgres -x postgres || true; pgrep -x etcd || true; pgrep -x patroni || true; } | wc -l)
echo "postgres HA removed ($left process(es) left)"
[ "$left" = 0 ]
