#!/bin/bash
# Module 4, Redis HA. Idempotent: a node already serving its expected role with our password is
# left alone; the master is whoever the running Sentinels say (after a failover too), else the
# inventory's initial master.
set -euo pipefail
pass=$KBZ_SECRET_REDIS_PASSWORD
name=$KBZ_CLUSTER
cli() { REDISCLI_AUTH=$pass redis-cli --no-auth-warning "$@"; }

echo "::step packages"
for p in redis-server redis-sentinel; do
    dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"
done

echo "::step password file"
install -d -m 0700 /etc/kbz/secrets
umask 077
printf '%s\n' "$pass" >/etc/kbz/secrets/redis_password
umask 022

echo "::step find the master"
master_ip=""
for pair in $KBZ_MEMBERS; do
    addr=$(cli -h "${pair#*=}" -p 26379 SENTINEL get-master-addr-by-name "$name" 2>/dev/null | head -1 || true)
    case "$addr" in [0-9]*) master_ip=$addr; break ;; esac
done
if [ -n "$master_ip" ]; then
    echo "the Sentinels say the master is $master_ip"
else
    master_ip=$KBZ_INITIAL_PRIMARY_IP
    echo "no Sentinel answers: the master is the inventory's, $KBZ_INITIAL_PRIMARY ($master_ip)"
fi

echo "::step redis"
for f in redis.conf sentinel.conf; do
    [ -e "/etc/redis/$f.debian" ] || cp -p "/etc/redis/$f" "/etc/redis/$f.debian"
done
role=$(cli -h 127.0.0.1 ROLE 2>/dev/null | head -1 || true)
link=$(cli -h 127.0.0.1 INFO replication 2>/dev/null | tr -d '\r' | awk -F: '$1=="master_host"{print $2}' || true)
if [ "$KBZ_IP" = "$master_ip" ] && [ "$role" = master ]; then
    echo "redis already serving as master"
elif [ "$KBZ_IP" != "$master_ip" ] && [ "$role" = slave ] && [ "$link" = "$master_ip" ]; then
    echo "redis already replicating from $master_ip"
else
    {
        echo "# Written by kbz module 4. Sentinel rewrites replicaof after a failover."
        echo "bind $KBZ_IP 127.0.0.1"
        echo "port 6379"
        echo "protected-mode yes"
        echo "supervised systemd"
        echo "daemonize no"
        echo "pidfile /run/redis/redis-server.pid"
        echo 'logfile ""'
        echo "dir /var/lib/redis"
        echo "appendonly yes"
        echo "requirepass $pass"
        echo "masterauth $pass"
        echo "replica-announce-ip $KBZ_IP"
        echo "replica-priority 100"
        [ "$KBZ_IP" = "$master_ip" ] || echo "replicaof $master_ip 6379"
    } >/etc/redis/redis.conf
    chown redis:redis /etc/redis/redis.conf
    chmod 0640 /etc/redis/redis.conf
    systemctl enable -q redis-server
    systemctl restart redis-server
    echo "redis (re)started as $([ "$KBZ_IP" = "$master_ip" ] && echo master || echo "replica of $master_ip")"
fi

echo "::step sentinel"
if [ "$(cli -h 127.0.0.1 -p 26379 SENTINEL get-master-addr-by-name "$name" 2>/dev/null | head -1 || true)" = "$master_ip" ]; then
    echo "sentinel already monitors $name at $master_ip"
else
    {
        echo "# Written by kbz module 4; Sentinel adds what it learns below."
        echo "bind $KBZ_IP 127.0.0.1"
        echo "port 26379"
        echo "supervised systemd"
        echo "daemonize no"
        echo "pidfile /run/sentinel/redis-sentinel.pid"
        echo 'logfile ""'
        echo "dir /var/lib/redis"
        echo "sentinel announce-ip $KBZ_IP"
        echo "requirepass $pass"
        echo "sentinel sentinel-pass $pass"
        echo "sentinel monitor $name $master_ip 6379 2"
        echo "sentinel auth-pass $name $pass"
        echo "sentinel down-after-milliseconds $name 3000"
        echo "sentinel failover-timeout $name 10000"
        echo "sentinel parallel-syncs $name 1"
    } >/etc/redis/sentinel.conf
    chown redis:redis /etc/redis/sentinel.conf
    chmod 0640 /etc/redis/sentinel.conf
    systemctl enable -q redis-sentinel
    systemctl restart redis-sentinel
    echo "sentinel (re)started, monitoring $name at $master_ip, quorum 2"
fi
