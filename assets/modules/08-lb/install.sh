#!/bin/bash
# Module 8, load balancers. Idempotent: configs are rewritten whole and services reloaded only
# when they changed.
set -euo pipefail
vip=${KBZ_VAR_HAPROXY_VIP%/*}
prefix=${KBZ_VAR_HAPROXY_VIP#*/}
[ "$prefix" = "$KBZ_VAR_HAPROXY_VIP" ] && prefix=24

echo "::step packages"
for p in haproxy keepalived; do
    dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"
done

# Members of the clusters HAProxy routes to ("name:technology:host=ip,host=ip ...").
members_of() {
    for c in $KBZ_CLUSTERS; do
        tech=$(echo "$c" | cut -d: -f2)
        if [ "$tech" = "$1" ]; then echo "$c" | cut -d: -f3 | tr ',' ' '; fi
    done
    return 0
}
pg=$(members_of patroni)
redis=$(members_of redis)
rabbit=$(members_of rabbitmq)
galera=$(members_of galera)
rabbit_auth=$(printf '%s' "kbz-monitor:${KBZ_SECRET_RABBITMQ_MONITOR_PASSWORD:-}" | base64 -w0)

echo "::step haproxy"
for f in /etc/haproxy/haproxy.cfg /etc/keepalived/keepalived.conf; do
    if [ -e "$f" ] && [ ! -e "$f.debian" ]; then cp -p "$f" "$f.debian"; fi
done
tmp=$(mktemp)
{
    cat <<CONF
# Written by kbz module 8.
global
    log /dev/log local0
    stats socket /run/haproxy/admin.sock mode 660 level admin
    stats timeout 30s
    user haproxy
    group haproxy

defaults
    log global
    mode tcp
    option tcplog
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 1s

listen stats
    bind *:8404
    mode http
    stats enable
    stats uri /stats
    stats refresh 2s
CONF
    if [ -n "$pg" ]; then
        cat <<CONF

# Writes: only the Patroni leader answers 200 on /primary. OPTIONS, not GET: HAProxy ends
# every check with a RST, which lands while Patroni still writes a GET's body, and Patroni
# logs a 20-line traceback for each (several a second); OPTIONS gets the status alone.
listen postgres_primary
    bind *:5432
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
CONF
        for m in $pg; do echo "    server ${m%%=*} ${m#*=}:5432 check port 8008"; done
    fi
    if [ -n "$redis" ]; then
        cat <<CONF

# Only the master says role:master.
listen redis_master
    bind *:6379
    option tcp-check
    tcp-check send AUTH\\ $KBZ_SECRET_REDIS_PASSWORD\\r\\n
    tcp-check expect string +OK
    tcp-check send PING\\r\\n
    tcp-check expect string +PONG
    tcp-check send info\\ replication\\r\\n
    tcp-check expect string role:master
    tcp-check send QUIT\\r\\n
    tcp-check expect string +OK
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
CONF
        for m in $redis; do echo "    server ${m%%=*} ${m#*=}:6379 check"; done
    fi
    if [ -n "$rabbit" ]; then
        cat <<CONF

# AMQP to every node that serves: its management API says its AMQP listener is up (a node
# paused by pause_minority, or stopped, answers nothing); its clients are cut so that they
# reconnect to one that does. Any node reaches a quorum queue's leader. The check asks the
# API, not the AMQP port: RabbitMQ logs three warning lines for every connection that
# closes before its handshake, which an AMQP check is, twice a second per load balancer.
listen rabbitmq_amqp
    bind *:5672
    balance leastconn
    timeout client 3h
    timeout server 3h
    option httpchk
    http-check send meth GET uri /api/health/checks/port-listener/5672 hdr Authorization "Basic $rabbit_auth"
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
CONF
        for m in $rabbit; do echo "    server ${m%%=*} ${m#*=}:5672 check port 15672"; done
    fi
    if [ -n "$galera" ]; then
        cat <<CONF

# MySQL to one Galera writer at a time (the others are backups, in inventory order): two
# writers would fail each other's transactions at certification. Health from each node's
# :9200 endpoint (module 7), which says 200 only when Synced and in the Primary component:
# HAProxy's mysql-check only sees that the server answers a handshake, which a non-Primary
# node (that refuses every query) does too. When the writer comes back, the backup's clients
# are cut, so that there is still one writer.
listen galera_writer
    bind *:3306
    mode tcp
    timeout client 3h
    timeout server 3h
    option httpchk
    http-check send meth GET uri /
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions
CONF
        backup=""
        for m in $galera; do
            echo "    server ${m%%=*} ${m#*=}:3306 check port 9200$backup"
            backup=" backup"
        done
    fi
} >"$tmp"
haproxy -c -q -f "$tmp"
if ! cmp -s "$tmp" /etc/haproxy/haproxy.cfg || ! systemctl is-active -q haproxy; then
    install -o root -g haproxy -m 0640 "$tmp" /etc/haproxy/haproxy.cfg
    systemctl enable -q haproxy
    systemctl restart haproxy
    echo "haproxy (re)started: postgres -> $(echo $pg | wc -w) server(s), redis -> $(echo $redis | wc -w) server(s), rabbitmq -> $(echo $rabbit | wc -w) server(s), galera -> $(echo $galera | wc -w) server(s)"
else
    echo "haproxy already running with this config"
fi
rm -f "$tmp"

echo "::step keepalived"
iface=$(ip -o -4 addr show | awk -v ip="$KBZ_IP" '{split($4, a, "/")} a[1] == ip {print $2; exit}')
peers="" rank=0 i=0
for m in $(members_of haproxy); do
    i=$((i + 1))
    if [ "${m#*=}" = "$KBZ_IP" ]; then rank=$i; else peers="$peers        ${m#*=}
"; fi
done
priority=$((200 - rank * 50))
tmp=$(mktemp)
cat >"$tmp" <<CONF
# Written by kbz module 8.
global_defs {
    router_id $KBZ_HOST
    enable_script_security
    script_user root
}

vrrp_script chk_haproxy {
    script "/usr/bin/pgrep -x haproxy"
    interval 1
    fall 2
    rise 1
}

vrrp_instance kbz_$KBZ_CLUSTER {
    state BACKUP
    interface $iface
    virtual_router_id $(( ${vip##*.} % 255 + 1 ))
    priority $priority
    advert_int 1
    unicast_src_ip $KBZ_IP
    unicast_peer {
$peers    }
    virtual_ipaddress {
        $vip/$prefix dev $iface
    }
    track_script {
        chk_haproxy
    }
}
CONF
if ! cmp -s "$tmp" /etc/keepalived/keepalived.conf || ! systemctl is-active -q keepalived; then
    install -m 0644 "$tmp" /etc/keepalived/keepalived.conf
    systemctl enable -q keepalived
    systemctl restart keepalived
    echo "keepalived (re)started on $iface: $vip/$prefix, priority $priority"
else
    echo "keepalived already running with this config"
fi
rm -f "$tmp"
