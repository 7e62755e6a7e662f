#!/bin/bash
# Module 2 cleanup: kbz's /etc/hosts block and sysctl file go; the rest of /etc/hosts stays.
set -euo pipefail
echo "::step hosts file"
tmp=$(mktemp)
awk '$0=="# BEGIN kbz inventory (module 2)"{skip=1} !skip{print} $0=="# END kbz inventory"{skip=0}' /etc/hosts >"$tmp"
cmp -s "$tmp" /etc/hosts || cat "$tmp" >/etc/hosts
rm -f "$tmp"
echo "::step sysctls"
rm -f /etc/sysctl.d/60-kbz.conf
echo "base removed"
