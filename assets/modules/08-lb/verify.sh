#!/bin/bash
# Module 8 verify: HAProxy sees exactly one PostgreSQL primary and one Redis master (and every
# RabbitMQ node); the floating address answers; a write through it reaches the PostgreSQL
# leader and the Redis master, and a message published through it is confirmed and read back.
# Records the endpoints for kbz.
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
galera=$(for c in $KBZ_CLUSTERS; do [ "$(echo "$c" | cut -d: -f2)" != galera ] || echo "$c" | cut -d: -f3 | tr ',' ' '; done)
if [ -n "$galera" ]; then
    n=$(echo $galera | wc -w)
    for _ in $(seq 30); do [ "$(up_in galera_writer | wc -l)" = "$n" ] && break; sleep 0.5; done
    [ "$(up_in galera_writer | wc -l)" = "$n" ] ||
        { echo "galera_writer: want all $n nodes UP (one writer, the others backups), have: $(up_in galera_writer | tr '\n' ' ')" >&2; exit 1; }
    echo "galera_writer -> $(up_in galera_writer | tr '\n' ' ')"
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
    # A message published with a confirm and read back through the address (a quorum queue
    # of its own), by a client of a few lines: the hosts have no AMQP library.
    probe=kbz.verify.$KBZ_HOST
    python3 - "$vip" "$probe" "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" <<'PY'
import os, socket, struct, sys

# AMQP 0-9-1, as little of it as a publish with a confirm and a read back need.
host, queue, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
user, password = "kbz", os.environ["KBZ_SECRET_RABBITMQ_PASSWORD"]
s = socket.create_connection((host, 5672), timeout=5)
s.sendall(b"AMQP\x00\x00\x09\x01")
buf = b""


def read(n):
    global buf
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("AMQP: the server closed the connection")
        buf += chunk
    out, buf = buf[:n], buf[n:]
    return out


def frame():
    kind, channel, size = struct.unpack(">BHI", read(7))
    payload = read(size)
    if read(1) != b"\xce":
        sys.exit("AMQP: bad frame end")
    return kind, channel, payload


def method(want):
    while True:
        kind, _, p = frame()
        if kind != 1:
            continue
        got = struct.unpack(">HH", p[:4])
        if got == (10, 50) or got == (20, 40):
            code, n = struct.unpack(">HB", p[4:7])
            sys.exit(f"AMQP: closed by the server: {code} {p[7:7 + n].decode()}")
        if got in want:
            return got, p[4:]


def short(t):
    t = t.encode()
    return struct.pack(">B", len(t)) + t


def long(t):
    return struct.pack(">I", len(t)) + t


def send(channel, cls, mth, args=b"", kind=1):
    p = struct.pack(">HH", cls, mth) + args if kind == 1 else args
    s.sendall(struct.pack(">BHI", kind, channel, len(p)) + p + b"\xce")


method({(10, 10)})
send(0, 10, 11, long(b"") + short("PLAIN") + long(f"\0{user}\0{password}".encode()) + short("en_US"))
_, tune = method({(10, 30)})
send(0, 10, 31, tune[:6] + struct.pack(">H", 0))
send(0, 10, 40, short("/") + short("") + b"\x00")
method({(10, 41)})
send(1, 20, 10, short(""))
method({(20, 11)})
send(1, 85, 10, b"\x00")
method({(85, 11)})
quorum = long(short("x-queue-type") + b"S" + long(b"quorum"))
send(1, 50, 10, struct.pack(">H", 0) + short(queue) + b"\x02" + quorum)
method({(50, 11)})
send(1, 60, 40, struct.pack(">H", 0) + short("") + short(queue) + b"\x01")
send(1, 0, 0, struct.pack(">HHQH", 60, 0, len(body), 0x1000) + b"\x02", kind=2)
send(1, 0, 0, body, kind=3)
got, _ = method({(60, 80), (60, 50), (60, 120)})
if got != (60, 80):
    sys.exit("AMQP: the publish was not confirmed")
send(1, 60, 70, struct.pack(">H", 0) + short(queue) + b"\x01")
got, _ = method({(60, 71), (60, 72)})
if got == (60, 72):
    sys.exit("AMQP: the queue was empty")
kind, _, header = frame()
size = struct.unpack(">Q", header[4:12])[0]
data = b""
while len(data) < size:
    data += frame()[2]
send(1, 50, 40, struct.pack(">H", 0) + short(queue) + b"\x00")
method({(50, 41)})
send(0, 10, 50, struct.pack(">H", 200) + short("kbz verify") + struct.pack(">HH", 0, 0))
method({(10, 51)})
if data != body:
    sys.exit(f"AMQP: published {body!r}, read back {data!r}")
print(f"published with a confirm and read back {body.decode()} through {host}")
PY
    echo "::endpoint rabbitmq-amqp $vip:5672"
fi
if [ -n "$galera" ]; then
    # A row written through the address, read on every member; the node that took it is the
    # writer.
    my() { MYSQL_PWD=$KBZ_SECRET_GALERA_PASSWORD mariadb -u kbz --batch --skip-column-names "$@"; }
    id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    writer=$(my -h "$vip" -e "INSERT INTO kbz.verify (id, node) VALUES ('$id', @@hostname); SELECT @@hostname")
    for m in $galera; do
        got=$(my -h "${m#*=}" -e "SELECT node FROM kbz.verify WHERE id = '$id'")
        [ "$got" = "$writer" ] || { echo "galera: ${m%%=*} does not have row $id written through $vip" >&2; exit 1; }
    done
    my -h "$vip" -e "DELETE FROM kbz.verify WHERE id = '$id'"
    echo "galera write through $vip reached $writer, read on every member"
    echo "::endpoint galera-writer $vip:3306"
fi
echo "::endpoint postgres-primary $vip:5432"
echo "::endpoint redis-master $vip:6379"
echo "::endpoint haproxy-stats $vip:8404/stats"
