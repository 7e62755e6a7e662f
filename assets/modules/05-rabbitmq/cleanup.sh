#!/bin/bash
# Module 5 cleanup: no RabbitMQ or epmd process, no node database, cookie, users or logs, no
# enabled unit, Debian's config back.
set -euo pipefail
echo "::step stop"
systemctl disable -q --now rabbitmq-server 2>/dev/null || true
# The Erlang VM and its port mapper, had anything started them outside systemd.
pkill -u rabbitmq -x beam.smp 2>/dev/null || true
pkill -x epmd 2>/dev/null || true
for _ in $(seq 20); do pgrep -x beam.smp >/dev/null || pgrep -x epmd >/dev/null || break; sleep 0.5; done
echo "::step data"
rm -rf /var/lib/rabbitmq/mnesia /var/lib/rabbitmq/.erlang.cookie /var/log/rabbitmq/*
echo "::step configs"
rm -f /etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/advanced.config /etc/rabbitmq/enabled_plugins
if [ -e /etc/rabbitmq/rabbitmq-env.conf.debian ]; then
    mv -f /etc/rabbitmq/rabbitmq-env.conf.debian /etc/rabbitmq/rabbitmq-env.conf
fi
rm -f /etc/kbz/secrets/rabbitmq_monitor_password
left=$({ pgrep -x beam.smp || true; pgrep -x epmd || true; } | wc -l)
echo "rabbitmq removed ($left process(es) left)"
[ "$left" = 0 ]
