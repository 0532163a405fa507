#!/usr/bin/env bash
# fill-followers.sh — what other requests get while one large fill is under way: a 16 MiB object from an origin
# sending 2 MB/s (nginx limit_rate), through edge-cdn with RAM objects capped at 512 KiB, so the fill goes on on
# disk alone after its first 512 KiB. A leader asks at t=0; a waiter asks at t=0.1 s (on the cache lock, before the
# origin's head) and FOLLOWERS more requests ask at t=2 s (after the write left RAM). Prints, per build: the origin's
# fetch count for the object, each request's time to first byte and to its end, and the bytes it had 5 s after the
# leader started. Ports 28090 (origin), 28093 (edge-cdn).
# Usage: bash scripts/fill-followers.sh name=/path/to/edge-cdn [name2=/path/to/other] ...
set -euo pipefail
D=${EDGE_BENCH_DIR:-/tmp/edge-fill-followers}; mkdir -p $D/origin $D/logs
FOLLOWERS=${FOLLOWERS:-3}
[ -f $D/origin/big ] || head -c $((16 << 20)) /dev/urandom > $D/origin/big
cat > $D/origin.conf <<CONF
worker_processes 1; pid $D/origin.pid; error_log $D/logs/origin.log warn; daemon on;
events { worker_connections 1024; }
http { access_log $D/logs/access.log; sendfile on; limit_rate 2m;
  server { listen 127.0.0.1:28090; root $D/origin; add_header Cache-Control "public, max-age=3600" always;
    location / { } } }
CONF
started=()
cleanup() { for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f $D/origin.pid ] && kill "$(cat $D/origin.pid)" 2>/dev/null || true; }
trap cleanup EXIT
ask() { # label delay: one request; prints time to first byte, total, and the bytes after 5 s
  sleep "$2"
  local out partial
  out=$(curl -s -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download} %{http_code}' \
    http://127.0.0.1:28093/big?v=$run)
  echo "$1 $out"
}
partial() { # label delay: the bytes a request has 5 s after t=0
  sleep "$2"
  local got
  got=$(curl -s -o /dev/null --max-time "$(awk -v d="$2" 'BEGIN{print 5 - d}')" -w '%{size_download}' \
    http://127.0.0.1:28093/big?v=$run || true)
  echo "$1 bytes_by_5s=$got"
}
for arg in "$@"; do
  name=${arg%%=*}; bin=${arg#*=}; run=$RANDOM
  rm -rf $D/disk $D/logs/access.log; nginx -c $D/origin.conf
  "$bin" --origin http://127.0.0.1:28090 --listen 127.0.0.1:28093 --admin-listen none --memory-size 64 \
    --memory-max-object-size 512KiB --log-level warning --disk-path $D/disk > $D/logs/$name.log 2>&1 &
  pid=$!; started+=($pid)
  for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:28093/ && break; sleep 0.1; done
  echo "== $name"
  jobs=()
  ask leader 0 > $D/r-leader & jobs+=($!)
  ask waiter 0.1 > $D/r-waiter & jobs+=($!)
  partial waiter-probe 0.1 > $D/p-waiter & jobs+=($!)
  for i in $(seq 1 "$FOLLOWERS"); do ask "follower$i" 2 > $D/r-f$i & jobs+=($!); done
  partial follower-probe 2 > $D/p-follower & jobs+=($!)
  wait "${jobs[@]}"
  cat $D/r-leader $D/r-waiter $D/r-f* $D/p-waiter $D/p-follower | sed 's/^/  /'
  echo "  origin_fetches=$(grep -c "GET /big?v=$run" $D/logs/access.log || true)"
  kill $pid; wait $pid 2>/dev/null || true
  kill "$(cat $D/origin.pid)"; sleep 0.5
  rm -f $D/r-* $D/p-*
done
