#!/bin/bash
# Module 5 verify: every member running in one cluster, no partition, no alarm; the failover
# queue with a member on every node, all online, one leader; a message published and read
# back through this node.
set -euo pipefail
pass=$KBZ_SECRET_RABBITMQ_PASSWORD
members=$(echo "$KBZ_MEMBERS" | wc -w)
queue=kbz.failover

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
api() { # method path [json]
    local method=$1 path=$2 body=${3:-}
    {
        printf 'user = "kbz:%s"\n' "$pass"
        [ -z "$body" ] || printf 'data = "%s"\n' "${body//\"/\\\"}"
    } | curl -sS -f -m 10 -K - -X "$method" -H 'content-type: application/json' \
        "http://$KBZ_IP:15672/api$path"
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
cluster_ok() {
    rabbitmqctl -q cluster_status --formatter json |
        field "'ok' if len(d['running_nodes']) == $members and not d['partitions'] and not d['alarms'] else 'no'" | grep -qx ok
}
queue_ok() {
    api GET "/queues/%2F/$queue" |
        field "'ok' if len(d.get('members', [])) == $members and len(d.get('online', [])) == $members and d.get('leader') else 'no'" | grep -qx ok
}

echo "::step cluster"
wait_for 60 "$members running nodes, no partition, no alarm" cluster_ok
rabbitmqctl -q cluster_status --formatter json | field "' '.join(d['running_nodes'])" | sed 's/^/running: /'

echo "::step quorum queue"
wait_for 60 "$queue with $members members online and a leader" queue_ok
api GET "/queues/%2F/$queue" | field "'leader ' + d['leader'] + ', online ' + ' '.join(d['online'])"

echo "::step publish and read back"
probe=kbz.verify.$KBZ_HOST
id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
api PUT "/queues/%2F/$probe" '{"durable":true,"arguments":{"x-queue-type":"quorum"}}' >/dev/null
trap 'api DELETE "/queues/%2F/$probe" >/dev/null 2>&1 || true' EXIT
api POST /exchanges/%2F/amq.default/publish "{\"properties\":{},\"routing_key\":\"$probe\",\"payload\":\"$id\",\"payload_encoding\":\"string\"}" |
    field "d['routed']" | grep -qx True
got=$(api POST "/queues/%2F/$probe/get" '{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}' | field "d[0]['payload'] if d else ''")
[ "$got" = "$id" ] || { echo "published $id, read back '$got'" >&2; exit 1; }
echo "published and read back $id"
