#!/bin/bash
# Module 2 verify: every host of the ENV resolves to its inventory address.
set -euo pipefail
echo "::step names"
bad=0
for pair in $KBZ_ALL_HOSTS; do
    name=${pair%%=*} ip=${pair#*=}
    got=$(getent hosts "$name" | awk '{print $1; exit}')
    if [ "$got" != "$ip" ]; then
        echo "$name resolves to '${got:-nothing}', not $ip" >&2
        bad=1
    fi
done
[ "$bad" = 0 ] && echo "all $(echo "$KBZ_ALL_HOSTS" | wc -w) host names resolve to their inventory address"
exit "$bad"
