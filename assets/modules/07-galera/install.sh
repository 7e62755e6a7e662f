#!/bin/bash
# Module 7, MariaDB Galera. Idempotent: a node Synced in the Primary component keeps running
# and its data; configs, the health endpoint and users are checked every time. A node that
# is not running starts one of three ways:
# - another member is Synced and Primary: it joins (IST from the donor's gcache, else SST by
#   rsync), after every member before it in the inventory (one joiner at a time);
# - no member is, and no member holds data: the inventory's first member bootstraps a new
#   cluster;
# - no member is, and some hold data (a full stop): the member with the highest committed
#   seqno bootstraps, as every member's health endpoint reports it (/grastate: the seqno
#   saved at a clean stop, or the position --wsrep-recover finds after a crash), and the
#   others join it. Never two histories: members with different cluster uuids stop here.
set -euo pipefail
me=$KBZ_HOST
pass=$KBZ_SECRET_GALERA_PASSWORD
monitor=$KBZ_SECRET_GALERA_MONITOR_PASSWORD
first=${KBZ_MEMBERS%% *}
first=${first%%=*}
members=$(echo "$KBZ_MEMBERS" | wc -w)
peers=""
for m in $KBZ_MEMBERS; do peers="$peers${peers:+,}${m#*=}"; done
cnf=/etc/mysql/mariadb.conf.d/61-kbz-galera.cnf
state=/var/lib/kbz/galera
lib=/usr/local/lib/kbz

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
sql() { mariadb --batch --skip-column-names "$@"; }
var() { sql -e "SHOW GLOBAL STATUS LIKE '$1'" 2>/dev/null | cut -f2; }
synced_here() { [ "$(var wsrep_local_state_comment)" = Synced ] && [ "$(var wsrep_cluster_status)" = Primary ]; }
ip_of() { for m in $KBZ_MEMBERS; do [ "${m%%=*}" = "$1" ] && echo "${m#*=}"; done; }
# Synced and Primary, as the member's health endpoint says.
healthy() { curl -sf -m 2 "http://$(ip_of "$1"):9200/" >/dev/null; }
others_healthy() {
    for m in $KBZ_MEMBERS; do
        [ "${m%%=*}" = "$me" ] || ! healthy "${m%%=*}" || { echo "${m%%=*}"; return 0; }
    done
    return 1
}
before_me_healthy() {
    for m in $KBZ_MEMBERS; do
        [ "${m%%=*}" = "$me" ] && return 0
        healthy "${m%%=*}" || return 1
    done
}

echo "::step packages"
for p in mariadb-server galera-4 rsync; do
    dpkg -s "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"
done

echo "::step health endpoint"
id kbz-health >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kbz-health
# grastate.dat is mysql's, mode 0660.
usermod -a -G mysql kbz-health
install -d -m 0755 "$lib" "$state"
new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
cat >"$new/galera-health" <<'PY'
#!/usr/bin/python3
# kbz's Galera health endpoint (module 7). GET /: 200 "Synced and Primary", else 503 with
# what the node is instead (HAProxy's check). GET /grastate: the node's saved Galera state
# as JSON (module 7 chooses who bootstraps after a full stop from every member's). GET
# /state: the node's state and for how many seconds this endpoint has seen it so (HAProxy
# asks every 2 s: kbz's doctor tells a transfer from a member stuck Donor). Started by its
# socket; one mariadb client kept open between checks, so a check starts no process.
import json, os, select, socket, subprocess, time

END = b"kbz-end"
QUERY = (b"SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment',"
         b"'wsrep_cluster_status','wsrep_ready'); SELECT 'kbz-end';\n")
client = None
# The state last seen, and since when (monotonic seconds).
seen = ["?", time.monotonic()]


def status():
    """The node's wsrep variables, or None when MariaDB does not answer within 2 s."""
    global client
    for _ in range(2):
        if client is None or client.poll() is not None:
            client = subprocess.Popen(
                ["mariadb", "--batch", "--skip-column-names", "--unbuffered",
                 "--connect-timeout=2"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            client.stdin.write(QUERY)
            client.stdin.flush()
            out, buf = {}, b""
            while True:
                ready, _, _ = select.select([client.stdout], [], [], 2)
                chunk = os.read(client.stdout.fileno(), 4096) if ready else b""
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line == END:
                        return out
                    k, _, v = line.decode(errors="replace").partition("\t")
                    out[k] = v
        except OSError:
            pass
        client.kill()
        client.wait()
        client = None
    return None


def grastate():
    g = {"uuid": None, "seqno": None, "safe_to_bootstrap": None, "recovered": None}
    try:
        for line in open("/var/lib/mysql/grastate.dat"):
            k, _, v = line.partition(":")
            if k.strip() in g:
                v = v.strip()
                g[k.strip()] = int(v) if k.strip() != "uuid" else v
    except (OSError, ValueError):
        pass
    try:
        g["recovered"] = int(open("/var/lib/kbz/galera/recovered").read().split(":")[-1])
    except (OSError, ValueError):
        pass
    return g


def observe():
    """The node's state now ("Synced", "Donor/Desynced"..., "down"), remembered with when it
    started."""
    s = status()
    now = "down" if s is None else s.get("wsrep_local_state_comment", "?")
    if now != seen[0]:
        seen[:] = [now, time.monotonic()]
    return s


def answer(path):
    if path == "/state":
        observe()
        body = {"state": seen[0], "seconds": int(time.monotonic() - seen[1])}
        return 200, json.dumps(body) + "\n"
    if path == "/grastate":
        s = observe()
        g = grastate()
        g["running"] = s is not None
        return 200, json.dumps(g) + "\n"
    s = observe()
    if s is None:
        return 503, "MariaDB is not answering\n"
    state, comp = s.get("wsrep_local_state_comment", "?"), s.get("wsrep_cluster_status", "?")
    if state == "Synced" and comp == "Primary" and s.get("wsrep_ready") == "ON":
        return 200, "Synced and Primary\n"
    return 503, "%s, %s, ready %s\n" % (state, comp, s.get("wsrep_ready", "?"))


listener = socket.socket(fileno=3)
while True:
    conn, _ = listener.accept()
    try:
        conn.settimeout(2)
        request = conn.recv(4096).decode(errors="replace").split(" ")
        code, body = answer(request[1] if len(request) > 1 else "/")
        reason = "OK" if code == 200 else "Service Unavailable"
        conn.sendall(("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n%s" % (code, reason, len(body), body)).encode())
    except OSError:
        pass
    finally:
        conn.close()
PY
cat >"$new/kbz-galera-health.socket" <<UNIT
# Written by kbz module 7.
[Unit]
Description=kbz Galera health endpoint

[Socket]
ListenStream=$KBZ_IP:9200
FreeBind=yes

[Install]
WantedBy=sockets.target
UNIT
cat >"$new/kbz-galera-health.service" <<'UNIT'
# Written by kbz module 7.
[Unit]
Description=kbz Galera health endpoint
Requires=kbz-galera-health.socket

[Service]
ExecStart=/usr/local/lib/kbz/galera-health
User=kbz-health
Group=kbz-health
SupplementaryGroups=mysql
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
UNIT
health_changed=no
cmp -s "$new/galera-health" "$lib/galera-health" || {
    install -m 0755 "$new/galera-health" "$lib/galera-health"
    health_changed=yes
}
for u in kbz-galera-health.socket kbz-galera-health.service; do
    cmp -s "$new/$u" "/etc/systemd/system/$u" || {
        install -m 0644 "$new/$u" "/etc/systemd/system/$u"
        health_changed=yes
    }
done
if [ $health_changed = yes ]; then
    systemctl daemon-reload
    systemctl stop kbz-galera-health.service 2>/dev/null || true
    systemctl restart kbz-galera-health.socket
fi
systemctl enable -q --now kbz-galera-health.socket
echo "health endpoint on $KBZ_IP:9200 ($([ $health_changed = yes ] && echo written || echo unchanged))"

echo "::step configs"
install -d -m 0700 /etc/kbz/secrets
umask 077
printf '%s\n' "$monitor" >/etc/kbz/secrets/galera_monitor_password
umask 022
cat >"$new/galera.cnf" <<CNF
# Written by kbz module 7 (see docs/modules.md).
[mysqld]
bind-address = $KBZ_IP
# Galera replicates row events, and needs interleaved auto-increment locks.
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
# A commit is on this node's disk before it is acknowledged: a host crash loses none.
innodb_flush_log_at_trx_commit = 1
# Reads wait until the node has applied what the cluster committed before them.
wsrep_sync_wait = 1
wsrep_on = ON
wsrep_provider = /usr/lib/galera/libgalera_smm.so
wsrep_cluster_name = kbz-$KBZ_CLUSTER
wsrep_cluster_address = gcomm://$peers
wsrep_node_address = $KBZ_IP
wsrep_node_name = $me
wsrep_sst_method = rsync
# Galera's defaults, said on purpose: a silent peer is suspected after 5 s and dropped from
# the view; a write set cache of 128 MB lets a node that was away a while rejoin by IST.
wsrep_provider_options = "evs.suspect_timeout=PT5S; evs.inactive_timeout=PT15S; gcache.size=128M"
CNF
changed=no
cmp -s "$new/galera.cnf" "$cnf" || {
    install -m 0644 "$new/galera.cnf" "$cnf"
    changed=yes
}
echo "configs $([ $changed = yes ] && echo written || echo unchanged)"

echo "::step cluster"
bootstrapped=no
if systemctl is-active -q mariadb && synced_here; then
    echo "$me is Synced in the Primary component ($(var wsrep_cluster_size) members)"
    if [ $changed = yes ]; then
        echo "the new configs apply at its next restart (one node at a time: systemctl restart mariadb)"
    fi
else
    systemctl enable -q mariadb
    if [ -f /var/lib/mysql/grastate.dat ] && grep -q '^seqno: *-1' /var/lib/mysql/grastate.dat &&
        ! systemctl is-active -q mariadb; then
        # Not stopped cleanly: the last committed position is in InnoDB, not in grastate.dat.
        pos=$(galera_recovery 2>/dev/null | sed -n 's/.*--wsrep_start_position=//p')
        [ -z "$pos" ] || echo "$pos" >"$state/recovered"
        echo "position recovered from InnoDB: ${pos:-none}"
    fi
    if donor=$(others_healthy); then
        wait_for 600 "the members before $me to be Synced (one joiner at a time)" before_me_healthy
        echo "joining the cluster ($donor is Synced and Primary)"
        systemctl start mariadb
    else
        # Nobody serves: every member's saved state decides who bootstraps.
        choice=$(
            for m in $KBZ_MEMBERS; do
                h=${m%%=*}
                for _ in $(seq 120); do
                    g=$(curl -sf -m 2 "http://${m#*=}:9200/grastate") && break
                    sleep 0.5
                done
                echo "$h ${g:-unreachable}"
            done | python3 -c '
import json, sys
me = sys.argv[1]
rows, uuids = [], set()
for i, line in enumerate(sys.stdin):
    host, _, g = line.strip().partition(" ")
    if g == "unreachable":
        sys.exit("cannot read the saved state of %s (its health endpoint :9200 does not answer): refusing to choose who bootstraps" % host)
    g = json.loads(g)
    if g["running"] and host == me:
        sys.exit("%s runs MariaDB but is not Synced and Primary: stop it (systemctl stop mariadb), then install again" % host)
    if g["running"]:
        # Another member is starting (bootstrapping, or joining one that did): wait for it.
        print(host, "starting")
        sys.exit(0)
    has = g["uuid"] not in (None, "", "00000000-0000-0000-0000-000000000000")
    seq = g["seqno"] if g["seqno"] is not None and g["seqno"] >= 0 else g["recovered"]
    if has:
        uuids.add(g["uuid"])
    rows.append((has, seq if seq is not None else -1, g["safe_to_bootstrap"] == 1, -i, host))
if len(uuids) > 1:
    sys.exit("the members hold different clusters (%s): refusing to bootstrap either" % ", ".join(sorted(uuids)))
if not any(r[0] for r in rows):
    print(rows[0][4], "new")
else:
    best = max(r for r in rows if r[0])
    print(best[4], "seqno", best[1])
' "$me")
        who=${choice%% *}
        echo "no member is Synced and Primary; bootstrap: $choice"
        if [ "${choice#* }" = starting ]; then
            wait_for 600 "$who, which is starting, to be Synced and Primary" healthy "$who"
            wait_for 600 "the members before $me to be Synced (one joiner at a time)" before_me_healthy
            systemctl start mariadb
        elif [ "$who" = "$me" ]; then
            [ ! -f /var/lib/mysql/grastate.dat ] ||
                sed -i 's/^safe_to_bootstrap: *0/safe_to_bootstrap: 1/' /var/lib/mysql/grastate.dat
            galera_new_cluster
            bootstrapped=yes
            echo "$me bootstrapped the cluster"
        else
            wait_for 300 "$who to bootstrap the cluster" healthy "$who"
            wait_for 600 "the members before $me to be Synced (one joiner at a time)" before_me_healthy
            systemctl start mariadb
        fi
    fi
    wait_for 600 "$me to be Synced in the Primary component" synced_here
    rm -f "$state/recovered"
    echo "$me is Synced ($(var wsrep_cluster_size) members)"
fi

echo "::step users"
if [ "$me" = "$first" ] || [ $bootstrapped = yes ]; then
    # On the command's stdin, never on a command line. DDL replicates to every member.
    sql <<SQL
CREATE USER IF NOT EXISTS 'kbz-health'@'localhost' IDENTIFIED VIA unix_socket;
CREATE DATABASE IF NOT EXISTS kbz;
CREATE TABLE IF NOT EXISTS kbz.failover (run VARCHAR(64) NOT NULL, id BIGINT NOT NULL, node VARCHAR(64) NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (run, id));
CREATE TABLE IF NOT EXISTS kbz.verify (id VARCHAR(32) PRIMARY KEY, node VARCHAR(64) NOT NULL);
CREATE USER IF NOT EXISTS 'kbz'@'%' IDENTIFIED BY '$pass';
ALTER USER 'kbz'@'%' IDENTIFIED BY '$pass';
GRANT ALL ON kbz.* TO 'kbz'@'%';
CREATE USER IF NOT EXISTS 'kbz-monitor'@'%' IDENTIFIED BY '$monitor';
ALTER USER 'kbz-monitor'@'%' IDENTIFIED BY '$monitor';
SQL
    echo "users kbz (database kbz), kbz-monitor (no privilege), kbz-health (local socket)"
fi
