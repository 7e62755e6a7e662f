#!/bin/bash
# Module 8 verify: HAProxy sees exactly one PostgreSQL primary and one Redis master; the
# floating address answers; a write through it reaches the PostgreSQL leader and the Redis
# master. Records the endpoints for kbz.
set -euo pipefail
vip=${KBZ_VAR_HAPROXY_VIP%/*}

up_in() { # backend -> servers UP, from the stats socket
    echo "show stat" | socat - UNIX-CONNECT:/run/haproxy/admin.sock |
        awk -F, -v b="$1" '$1 == b && $2 != "FRONTEND" && $2 != "BACKEND" && $18 ~ /^UP/ {print $2}'
}
wait_one_up() {
    for _ in $(seq 30); do
        [ "$(up_in "$1" | wc -l)" = 1 ] && return 0
        sleep 0.5
    done
    echo "$1: want exactly one server UP, have: $(up_in "$1" | tr '\n' ' ')" >&2
    return 1
}

echo "::step haproxy backends"
wait_one_up postgres_primary
wait_one_up redis_master
echo "postgres_primary -> $(up_in postgres_primary), redis_master -> $(up_in redis_master)"
rabbit=0
grep -q '^listen rabbitmq_amqp' /etc/haproxy/haproxy.cfg && rabbit=$(grep -c ":5672 check" /etc/haproxy/haproxy.cfg)
if [ "$rabbit" != 0 ]; then
    for _ in $(seq 30); do [ "$(up_in rabbitmq_amqp | wc -l)" = "$rabbit" ] && break; sleep 0.5; done
    [ "$(up_in rabbitmq_amqp | wc -l)" = "$rabbit" ] ||
        { echo "rabbitmq_amqp: want all $rabbit nodes UP, have: $(up_in rabbitmq_amqp | tr '\n' ' ')" >&2; exit 1; }
    echo "rabbitmq_amqp -> $(up_in rabbitmq_amqp | tr '\n' ' ')"
fi

echo "::step floating address"
for _ in $(seq 20); do
    curl -fsS --max-time 1 "http://$vip:8404/stats" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS --max-time 1 "http://$vip:8404/stats" >/dev/null
holder=no
ip -o -4 addr show | grep -q " $vip/" && holder=yes
echo "$vip answers; held here: $holder"

# The address's holder may have just (re)started HAProxy, which counts every server up ("UP 1/2") until
# its checks say otherwise: wait until it too routes each backend to exactly one server.
vip_ready() {
    local csv want_pg=0 want_redis=0
    grep -q '^listen postgres_primary' /etc/haproxy/haproxy.cfg && want_pg=1
    grep -q '^listen redis_master' /etc/haproxy/haproxy.cfg && want_redis=1
    csv=$(curl -fsS --max-time 1 "http://$vip:8404/stats;csv") || return 1
    echo "$csv" | awk -F, -v p="$want_pg" -v r="$want_redis" '
        $2 != "FRONTEND" && $2 != "BACKEND" && $18 ~ /^UP/ {n[$1]++}
        END {exit !(n["postgres_primary"] + 0 == p && n["redis_master"] + 0 == r)}'
}
for _ in $(seq 30); do vip_ready && break; sleep 0.5; done

echo "::step writes through $vip"
# One statement string: one transaction, only its last result printed. The advisory lock
# keeps the two load balancers' "create table if not exists" from racing.
leader=$(PGPASSWORD=$KBZ_SECRET_PG_SUPERUSER_PASSWORD psql -h "$vip" -U postgres -d postgres -qtAX -v ON_ERROR_STOP=1 -c "
    set client_min_messages = warning;
    select pg_advisory_xact_lock(4242);
    create table if not exists kbz_check (at timestamptz default now(), host text);
    insert into kbz_check (host) values ('$KBZ_HOST');
    select host(inet_server_addr()) || ' ' || pg_is_in_recovery()::text" | tail -n 1)
case "$leader" in
*" false") echo "postgres write through $vip reached the leader at ${leader% *}" ;;
*) echo "postgres through $vip: unexpected answer '$leader'" >&2; exit 1 ;;
esac
role=$(REDISCLI_AUTH=$KBZ_SECRET_REDIS_PASSWORD redis-cli --no-auth-warning -h "$vip" -p 6379 SET kbz:check "$KBZ_HOST" >/dev/null &&
    REDISCLI_AUTH=$KBZ_SECRET_REDIS_PASSWORD redis-cli --no-auth-warning -h "$vip" -p 6379 ROLE | head -1)
[ "$role" = master ] || { echo "redis through $vip: ROLE says '$role'" >&2; exit 1; }
echo "redis write through $vip reached the master"

if [ "$rabbit" != 0 ]; then
    # The AMQP header through the address: a node answers with connection.start.
    start=$(timeout 3 bash -c "exec 3<>/dev/tcp/$vip/5672; printf 'AMQP\\0\\0\\11\\1' >&3; head -c 11 <&3" | od -An -tx1 | tr -d ' \n')
    case "$start" in
    01000000*000a000a) echo "AMQP through $vip: connection.start" ;;
    *) echo "AMQP through $vip: unexpected answer '$start'" >&2; exit 1 ;;
    esac
    echo "::endpoint rabbitmq-amqp $vip:5672"
fi
echo "::endpoint postgres-primary $vip:5432"
echo "::endpoint redis-master $vip:6379"
echo "::endpoint haproxy-stats $vip:8404/stats"
