#!/bin/bash
# Module 3 verify: etcd has every member healthy; Patroni shows one leader and every other
# member streaming (waits for the replicas' initial copy).
set -euo pipefail
members=$(echo "$KBZ_MEMBERS" | wc -w)
endpoints=""
for pair in $KBZ_MEMBERS; do endpoints="$endpoints${endpoints:+,}http://${pair#*=}:2379"; done

echo "::step etcd"
for _ in $(seq 60); do
    ok=$(ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint health 2>&1 | grep -c 'is healthy' || true)
    [ "$ok" = "$members" ] && break
    sleep 0.5
done
ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint health
[ "$ok" = "$members" ]

echo "::step patroni members"
# Patroni 3.0 says "running" for a replica whether it streams or not; PostgreSQL says which.
summary() {
    patronictl -c /etc/patroni/config.yml list -f json 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)
leaders = [x["Member"] for x in m if x["Role"] == "Leader" and x["State"] == "running"]
running = [x["Member"] for x in m if x["State"] in ("running", "streaming")]
print(len(leaders), len(running), ",".join(leaders))'
}
psql_local() { runuser -u postgres -- psql -h /var/run/postgresql -tAc "$1" 2>/dev/null; }
for _ in $(seq 120); do
    read -r leaders running who < <(summary || echo "0 0 -")
    if [ "$leaders" = 1 ] && [ "$running" = "$members" ]; then
        if [ "$who" = "$KBZ_HOST" ]; then
            mine=$(psql_local "select count(*) from pg_stat_replication where state = 'streaming'")
            [ "$mine" = $((members - 1)) ] && break
        else
            mine=$(psql_local "select status from pg_stat_wal_receiver")
            [ "$mine" = streaming ] && break
        fi
    fi
    sleep 0.5
done
patronictl -c /etc/patroni/config.yml list
if [ "$who" = "$KBZ_HOST" ]; then
    [ "$mine" = $((members - 1)) ] || { echo "leader with ${mine:-no} streaming replicas, want $((members - 1))" >&2; exit 1; }
    echo "leader with $mine replicas streaming"
else
    [ "$mine" = streaming ] || { echo "replica not streaming from the leader ${who:-(none)}: ${mine:-no WAL receiver}" >&2; exit 1; }
    echo "replica streaming from $who"
fi
