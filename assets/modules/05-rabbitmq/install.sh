#!/bin/bash
# Module 5, RabbitMQ HA. Idempotent: a node already clustered with the inventory's first
# member keeps its data; its configs, users and the failover queue are checked every time.
# The first member is the seed: the others join it (explicitly, not by peer discovery, which
# lets nodes booting at once form two clusters).
set -euo pipefail
pass=$KBZ_SECRET_RABBITMQ_PASSWORD
me=rabbit@$KBZ_HOST
first=${KBZ_MEMBERS%% *}
first=${first%%=*}
seed=rabbit@$first
members=$(echo "$KBZ_MEMBERS" | wc -w)
queue=kbz.failover
etc=/etc/rabbitmq
lib=/var/lib/rabbitmq

wait_for() { # seconds, description, command...
    local t=$1 what=$2
    shift 2
    for _ in $(seq $((t * 2))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "timed out after ${t}s waiting for: $what" >&2
    return 1
}

# The management API as kbz, the password on curl's stdin (never on a command line).
api() { # method path [json]
    local method=$1 path=$2 body=${3:-}
    {
        printf 'user = "kbz:%s"\n' "$pass"
        [ -z "$body" ] || printf 'data = "%s"\n' "${body//\"/\\\"}"
    } | curl -sS -f -m 10 -K - -X "$method" -H 'content-type: application/json' \
        "http://$KBZ_IP:15672/api$path"
}

# The nodes of the cluster this node belongs to (running or not), one a line.
nodes() {
    rabbitmqctl -q cluster_status --formatter json 2>/dev/null |
        python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["disk_nodes"]))'
}
running() {
    rabbitmqctl -q cluster_status --formatter json 2>/dev/null |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))'
}
all_running() { [ "$(running)" = "$members" ]; }
# The member before this one in the inventory: joiners go one at a time, in that order (two
# nodes resetting and joining at once race on the cluster's schema; a node that starts while
# the other resets can wait minutes for its tables).
before=$seed
for m in $KBZ_MEMBERS; do
    [ "${m%%=*}" = "$KBZ_HOST" ] && break
    before=rabbit@${m%%=*}
done
joined() { # node: running in the seed's cluster
    rabbitmqctl -q -n "$seed" cluster_status --formatter json 2>/dev/null |
        python3 -c 'import json,sys; sys.exit(sys.argv[1] not in json.load(sys.stdin)["running_nodes"])' "$1"
}

echo "::step packages"
if ! dpkg -s rabbitmq-server >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server
    # Its postinst starts a node with a random cookie and a guest user: not ours.
    systemctl stop rabbitmq-server
    rm -rf "$lib/mnesia"
fi

echo "::step configs"
install -d -m 0700 /etc/kbz/secrets
umask 077
printf '%s\n' "$KBZ_SECRET_RABBITMQ_MONITOR_PASSWORD" >/etc/kbz/secrets/rabbitmq_monitor_password
umask 022
for f in rabbitmq-env.conf; do
    [ -e "$etc/$f.debian" ] || [ ! -e "$etc/$f" ] || cp -p "$etc/$f" "$etc/$f.debian"
done
new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
{
    echo "# Written by kbz module 5."
    echo "NODENAME=$me"
} >"$new/rabbitmq-env.conf"
{
    echo "# Written by kbz module 5 (see docs/modules.md)."
    echo "listeners.tcp.1 = $KBZ_IP:5672"
    echo "listeners.tcp.2 = 127.0.0.1:5672"
    echo "management.tcp.ip = $KBZ_IP"
    echo "management.tcp.port = 15672"
    echo "# Raft terms and log indices of each quorum queue member, for kbz's watcher."
    echo "prometheus.tcp.ip = $KBZ_IP"
    echo "prometheus.tcp.port = 15692"
    echo "# A node that cannot see a majority of the cluster stops serving until it does."
    echo "cluster_partition_handling = pause_minority"
    echo "# A silent peer is down after 8-13 s (the default 60 s: 45-75 s)."
    echo "net_ticktime = 10"
    echo "# The management API's queue leaders and node states at most 1 s old (default 5 s)."
    echo "collect_statistics_interval = 1000"
    echo "# Created with the cluster's database (the first member's first boot): no guest user."
    echo "default_user = kbz"
    echo "default_pass = $pass"
    echo "default_user_tags.administrator = true"
    echo "default_permissions.configure = .*"
    echo "default_permissions.read = .*"
    echo "default_permissions.write = .*"
} >"$new/rabbitmq.conf"
cat >"$new/advanced.config" <<'ERL'
%% Written by kbz module 5. aten is the failure detector of quorum queues' Raft: a 1 s poll
%% (its default, said here on purpose) has a leader's silent node noticed within a few seconds.
[{aten, [{poll_interval, 1000}]}].
ERL
printf '%s' "$KBZ_SECRET_RABBITMQ_COOKIE" >"$new/.erlang.cookie"
changed=no
for f in rabbitmq-env.conf rabbitmq.conf advanced.config; do
    if ! cmp -s "$new/$f" "$etc/$f"; then
        install -m 0640 -o root -g rabbitmq "$new/$f" "$etc/$f"
        changed=yes
    fi
done
if ! cmp -s "$new/.erlang.cookie" "$lib/.erlang.cookie"; then
    # A new cookie: the node's old database belongs to a cluster it can no longer talk to.
    systemctl stop rabbitmq-server
    rm -rf "$lib/mnesia"
    install -m 0400 -o rabbitmq -g rabbitmq "$new/.erlang.cookie" "$lib/.erlang.cookie"
    changed=yes
fi
plugins="[rabbitmq_management,rabbitmq_prometheus]."
if [ "$(cat "$etc/enabled_plugins" 2>/dev/null)" != "$plugins" ]; then
    echo "$plugins" >"$etc/enabled_plugins"
    changed=yes
fi
echo "configs $([ $changed = yes ] && echo written || echo unchanged)"

echo "::step start"
systemctl enable -q rabbitmq-server
if [ $changed = yes ]; then systemctl restart rabbitmq-server; else systemctl start rabbitmq-server; fi
wait_for 120 "$me to start" rabbitmqctl -q await_startup
echo "$me running"

echo "::step cluster"
if [ "$me" = "$seed" ]; then
    echo "$me is the seed"
elif nodes | grep -qx "$seed"; then
    echo "already clustered with $seed"
else
    wait_for 180 "the seed $seed to run" rabbitmq-diagnostics -q -n "$seed" check_running
    [ "$before" = "$seed" ] || wait_for 300 "$before to join first" joined "$before"
    rabbitmqctl -q stop_app >/dev/null
    rabbitmqctl -q reset >/dev/null
    rabbitmqctl -q join_cluster "$seed" >/dev/null
    rabbitmqctl -q start_app >/dev/null
    echo "joined $seed"
fi

echo "::step users"
wait_for 60 "the management API on $KBZ_IP:15672" api GET /overview
if [ "$me" = "$seed" ]; then
    api PUT /users/kbz-monitor "{\"password\":\"$KBZ_SECRET_RABBITMQ_MONITOR_PASSWORD\",\"tags\":\"monitoring\"}"
    # Monitoring sees every node and queue; no permission on any resource.
    api PUT /permissions/%2F/kbz-monitor '{"configure":"^$","write":"^$","read":"^$"}'
    api DELETE /users/guest 2>/dev/null || true
    echo "users kbz (administrator) and kbz-monitor (monitoring)"
fi

echo "::step quorum queue"
want="{\"durable\":true,\"auto_delete\":false,\"arguments\":{\"x-queue-type\":\"quorum\",\"x-quorum-initial-group-size\":$members}}"
if [ "$me" = "$seed" ]; then
    wait_for 300 "all $members nodes running" all_running
    api PUT "/queues/%2F/$queue" "$want"
    echo "quorum queue $queue declared ($(running) nodes running)"
elif api GET "/queues/%2F/$queue" >/dev/null 2>&1; then
    # Declared before this node (re)joined: a member here too.
    rabbitmq-queues -q grow "$me" all --vhost-pattern '^/$' --queue-pattern "^${queue//./\\.}\$" >/dev/null
    echo "$me is a member of $queue"
else
    echo "the seed declares $queue once all $members nodes run"
fi
