#!/bin/bash
# Module 7 cleanup: no MariaDB process, an empty data directory as Debian's package leaves
# it (system tables only, root by its Unix socket), no Galera config, no health endpoint or
# its user, no password file, no enabled unit.
set -euo pipefail
echo "::step stop"
systemctl disable -q --now kbz-galera-health.socket kbz-galera-health.service 2>/dev/null || true
systemctl disable -q --now mariadb 2>/dev/null || true
pkill -x mariadbd 2>/dev/null || true
for _ in $(seq 20); do pgrep -x mariadbd >/dev/null || break; sleep 0.5; done
pkill -9 -x mariadbd 2>/dev/null || true
echo "::step configs"
rm -f /etc/mysql/mariadb.conf.d/61-kbz-galera.cnf /etc/kbz/secrets/galera_monitor_password
rm -f /etc/systemd/system/kbz-galera-health.socket /etc/systemd/system/kbz-galera-health.service
rm -rf /usr/local/lib/kbz/galera-health /var/lib/kbz/galera
systemctl daemon-reload
! id kbz-health >/dev/null 2>&1 || userdel kbz-health
echo "::step data"
rm -rf /var/lib/mysql
install -d -m 0755 -o mysql -g mysql /var/lib/mysql
mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
left=$(pgrep -x mariadbd | wc -l || true)
echo "mariadb removed, data directory empty ($left process(es) left)"
[ "$left" = 0 ]
