#!/bin/bash
# Module 4 verify: Redis answers with auth in its role, the master has every replica connected,
# and the Sentinels reach their quorum (waits for them to find each other).
set -euo pipefail
pass=$KBZ_SECRET_REDIS_PASSWORD
name=$KBZ_CLUSTER
cli() { REDISCLI_AUTH=$pass redis-cli --no-auth-warning "$@"; }
members=$(echo "$KBZ_MEMBERS" | wc -w)

wait_for() { # seconds, description, command...
    local t=$1 what=$2
    shift 2
    for _ in $(seq $((t * 2))); do
        "$@" && return 0
        sleep 0.5
    done
    echo "timed out after ${t}s waiting for: $what" >&2
    return 1
}

echo "::step redis answers"
wait_for 20 "PONG from redis" sh -c "[ \"\$(REDISCLI_AUTH='$pass' redis-cli --no-auth-warning -h 127.0.0.1 PING)\" = PONG ]"
if REDISCLI_AUTH= redis-cli -h 127.0.0.1 PING 2>/dev/null | grep -q PONG; then
    echo "redis answers without a password" >&2
    exit 1
fi

echo "::step replication"
master=$(cli -h 127.0.0.1 -p 26379 SENTINEL get-master-addr-by-name "$name" | head -1)
if [ "$master" = "$KBZ_IP" ]; then
    want=$((members - 1))
    wait_for 30 "$want connected replicas" sh -c "REDISCLI_AUTH='$pass' redis-cli --no-auth-warning -h 127.0.0.1 INFO replication | tr -d '\r' | grep -qx 'connected_slaves:$want'"
    echo "master with $want connected replicas"
else
    wait_for 30 "the link to the master $master" sh -c "REDISCLI_AUTH='$pass' redis-cli --no-auth-warning -h 127.0.0.1 INFO replication | tr -d '\r' | grep -qx 'master_link_status:up'"
    echo "replica of $master, link up"
fi

echo "::step sentinel quorum"
wait_for 30 "CKQUORUM with $members usable Sentinels" sh -c "REDISCLI_AUTH='$pass' redis-cli --no-auth-warning -h 127.0.0.1 -p 26379 SENTINEL CKQUORUM '$name' | grep -q '^OK $members usable'"
cli -h 127.0.0.1 -p 26379 SENTINEL CKQUORUM "$name"
