#!/bin/bash
# Module 7 verify: this node Synced in one Primary component of every member, all of them
# healthy on :9200 and agreeing on the cluster (state uuid, configuration id); a row written
# here and read on every member.
set -euo pipefail
pass=$KBZ_SECRET_GALERA_PASSWORD
members=$(echo "$KBZ_MEMBERS" | wc -w)

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
# As the workload's user, on member $1 (the password in the environment, not on a command line).
on() { local host=$1; shift; MYSQL_PWD=$pass mariadb -h "$host" -u kbz --batch --skip-column-names "$@"; }
view() { on "$1" -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_state_uuid','wsrep_cluster_conf_id','wsrep_cluster_size','wsrep_cluster_status','wsrep_local_state_comment')" | sort | cut -f2 | paste -sd' '; }
all_synced() {
    local first="" v
    for m in $KBZ_MEMBERS; do
        curl -sf -m 2 "http://${m#*=}:9200/" >/dev/null || return 1
        v=$(view "${m#*=}")
        [ -n "$first" ] || first=$v
        [ "$v" = "$first" ] || return 1
    done
    # By variable name: conf_id, size, state uuid, status, state.
    [[ $first =~ ^[0-9]+\ $members\ [^\ ]+\ Primary\ Synced$ ]]
}

echo "::step cluster"
wait_for 120 "$members members Synced in one Primary component" all_synced
for m in $KBZ_MEMBERS; do
    echo "${m%%=*}: $(curl -s -m 2 "http://${m#*=}:9200/")"
done
echo "conf_id, size, state uuid, status, state: $(view "$KBZ_IP")"

echo "::step write here, read everywhere"
id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
on "$KBZ_IP" -e "INSERT INTO kbz.verify (id, node) VALUES ('$id', '$KBZ_HOST')"
trap 'on "$KBZ_IP" -e "DELETE FROM kbz.verify WHERE id = '"'$id'"'" >/dev/null 2>&1 || true' EXIT
for m in $KBZ_MEMBERS; do
    got=$(on "${m#*=}" -e "SELECT node FROM kbz.verify WHERE id = '$id'")
    [ "$got" = "$KBZ_HOST" ] || { echo "${m%%=*} does not have row $id (got '$got')" >&2; exit 1; }
done
echo "row $id written on $KBZ_HOST, read on every member"
