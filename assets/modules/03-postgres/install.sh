#!/bin/bash
# Module 3, PostgreSQL HA: etcd on every member, then Patroni. Idempotent: a healthy etcd
# member and a running Patroni member with the same config are left alone.
set -euo pipefail
pgver=15
data=/var/lib/postgresql/$pgver/kbz
scope=$KBZ_CLUSTER

echo "::step packages"
for p in postgresql patroni etcd-server etcd-client python3-etcd; do
    dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"
done
# Debian's own cluster would take port 5432; Patroni runs its own data directory.
systemctl disable -q --now postgresql "postgresql@$pgver-main" 2>/dev/null || true

echo "::step passwords"
install -d -m 0700 /etc/kbz/secrets
umask 077
printf '%s\n' "$KBZ_SECRET_PG_SUPERUSER_PASSWORD" >/etc/kbz/secrets/pg_superuser_password
printf '%s\n' "$KBZ_SECRET_PG_REPLICATION_PASSWORD" >/etc/kbz/secrets/pg_replication_password
printf '%s\n' "$KBZ_SECRET_PG_REWIND_PASSWORD" >/etc/kbz/secrets/pg_rewind_password
umask 022

peers="" clients=""
for pair in $KBZ_MEMBERS; do
    peers="$peers${peers:+,}${pair%%=*}=http://${pair#*=}:2380"
    clients="$clients${clients:+,}${pair#*=}:2379"
done

echo "::step etcd"
members=$(echo "$KBZ_MEMBERS" | wc -w)
if ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:2379" member list 2>/dev/null | grep -c started | grep -qx "$members"; then
    echo "etcd member already running in a cluster of $members"
else
    [ -e /etc/default/etcd.debian ] || cp -p /etc/default/etcd /etc/default/etcd.debian
    cat >/etc/default/etcd <<CONF
# Written by kbz module 3.
ETCD_NAME=$KBZ_HOST
ETCD_DATA_DIR=/var/lib/etcd/kbz
ETCD_LISTEN_PEER_URLS=http://$KBZ_IP:2380
ETCD_LISTEN_CLIENT_URLS=http://$KBZ_IP:2379,http://127.0.0.1:2379
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$KBZ_IP:2380
ETCD_ADVERTISE_CLIENT_URLS=http://$KBZ_IP:2379
ETCD_INITIAL_CLUSTER=$peers
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=kbz-$scope
# Patroni 3.0 on Debian talks to etcd with the v2 API (python3-etcd).
ETCD_ENABLE_V2=true
# A LAN: 100 ms heartbeats, a leader lost after 1 s.
ETCD_HEARTBEAT_INTERVAL=100
ETCD_ELECTION_TIMEOUT=1000
CONF
    systemctl enable -q etcd
    # Type=notify: returns once this member has joined its peers (they start at the same time).
    systemctl restart etcd
    echo "etcd started; peers $peers"
fi

echo "::step patroni config"
install -d -o postgres -g postgres -m 0700 "$(dirname "$data")"
hba=""
for pair in $KBZ_MEMBERS; do
    hba="$hba    - host replication replicator ${pair#*=}/32 scram-sha-256
"
done
tmp=$(mktemp)
cat >"$tmp" <<CONF
# Written by kbz module 3.
scope: $scope
namespace: /kbz/
name: $KBZ_HOST
restapi:
  listen: $KBZ_IP:8008
  connect_address: $KBZ_IP:8008
etcd:
  hosts: $clients
bootstrap:
  dcs:
    # A dead leader's key expires after ttl; replicas look every loop_wait; a DCS call is
    # retried for retry_timeout. Patroni needs loop_wait + 2 * retry_timeout <= ttl.
    ttl: 10
    loop_wait: 2
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        password_encryption: scram-sha-256
  initdb:
    - encoding: UTF8
    - data-checksums
postgresql:
  listen: $KBZ_IP,127.0.0.1:5432
  connect_address: $KBZ_IP:5432
  data_dir: $data
  bin_dir: /usr/lib/postgresql/$pgver/bin
  pgpass: /var/lib/postgresql/.pgpass_patroni
  authentication:
    superuser:
      username: postgres
      password: $KBZ_SECRET_PG_SUPERUSER_PASSWORD
    replication:
      username: replicator
      password: $KBZ_SECRET_PG_REPLICATION_PASSWORD
    rewind:
      username: rewinder
      password: $KBZ_SECRET_PG_REWIND_PASSWORD
  parameters:
    unix_socket_directories: /var/run/postgresql
  pg_hba:
    - local all all peer
    - host all all 127.0.0.1/32 scram-sha-256
$hba    - host all all 0.0.0.0/0 scram-sha-256
tags:
  nofailover: false
  noloadbalance: false
CONF
changed=1
if cmp -s "$tmp" /etc/patroni/config.yml; then changed=0; fi
install -o postgres -g postgres -m 0600 "$tmp" /etc/patroni/config.yml
rm -f "$tmp"

echo "::step patroni"
leader() { # the cluster's leader, as any member's REST API says
    for pair in $KBZ_MEMBERS; do
        curl -fsS --max-time 1 "http://${pair#*=}:8008/cluster" 2>/dev/null |
            python3 -c 'import json,sys; print(next((m["name"] for m in json.load(sys.stdin)["members"] if m["role"]=="leader"), ""))' 2>/dev/null &&
            return 0
    done
    return 0
}
if systemctl is-active -q patroni && [ "$changed" = 0 ]; then
    echo "patroni already running with this config"
else
    if [ "$KBZ_HOST" != "$KBZ_INITIAL_PRIMARY" ] && [ -z "$(leader)" ]; then
        # The inventory's primary bootstraps; the others wait for a leader to clone from.
        echo "waiting for a leader before joining"
        for _ in $(seq 120); do
            [ -n "$(leader)" ] && break
            sleep 0.5
        done
    fi
    systemctl enable -q patroni
    systemctl restart patroni
    echo "patroni (re)started; leader: $(leader)"
fi
