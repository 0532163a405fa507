#!/usr/bin/env bash
# bench-proxy.sh — edge-cdn against nginx proxy_cache and Varnish, same origin, same run.
#
# Installs what it needs (apt-get: nginx-light, varnish, wrk), builds edge-cdn in release,
# starts an nginx origin (static files, Cache-Control: public, max-age=3600) and the three
# caches on loopback, measures each with wrk (2 threads, $CONNS connections, $SECS s) on hot
# hits of 1 KiB, 128 KiB and 1 MiB and on 100k distinct 1 KiB objects (each key asked once,
# then the measured round of random keys), prints
#   proxy.<server>.<workload>.rps=  .p99_ms=  .mbps=   and   proxy.<server>.rss_mb=
# (edge-cdn's rss_mb includes its memfd bodies, also printed alone as memfd_mb)
# and stops everything it started. Adapted from ../shared/bench/peers.sh and wrk.sh.
# SERVERS, WORKLOADS and ROUNDS pick a subset or repeat it (see below).
# Ports: origin 18080, nginx 18081, varnish 18082, edge-cdn 18083. State: $EDGE_BENCH_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${EDGE_BENCH_DIR:-/tmp/edge-bench-proxy}
SECS=${SECS:-8}
CONNS=${CONNS:-64}
KEYS=${KEYS:-100000}
SERVERS=${SERVERS:-"edge-cdn nginx varnish"}
# A subset for quick comparisons on a busy machine, e.g. WORKLOADS=hot_1k ROUNDS=3.
WORKLOADS=${WORKLOADS:-"hot_1k hot_128k hot_1m keys100k_1k"}
# Each round measures every server once, in turn, so a load spike from other work on
# the machine hits all servers alike; with ROUNDS>1 the figures get a .r<N> suffix.
ROUNDS=${ROUNDS:-1}
mkdir -p "$D"
results="$D/results.txt"
: > "$results"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v varnishd >/dev/null || need+=(varnish)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}" >&2
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi

echo "== swift build -c release --product edge-cdn" >&2
swift build -c release --product edge-cdn >&2
EDGE_BIN=$(swift build -c release --show-bin-path)/edge-cdn

pids_of() { # the server's processes (master and children), for RSS
  local master=""
  case "$1" in
    nginx) master=$(pgrep -f "nginx -c $D/nginx/nginx.conf" | head -1 || true) ;;
    varnish) master=$(pgrep -f "varnishd -a 127.0.0.1:18082" | head -1 || true) ;;
    edge-cdn) master=$(cat "$D/edge-cdn.pid" 2>/dev/null || true) ;;
  esac
  [ -n "$master" ] || return 0
  echo "$master"; pgrep -P "$master" || true
}
rss_mb() {
  local total=0 kb
  for p in $(pids_of "$1"); do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo $((total / 1024))
}
# edge-cdn keeps bodies of 64 KiB and more in memfds: their pages are the process's own
# but not mapped, so VmRSS leaves them out; rss_mb adds them for edge-cdn (page-rounded),
# as Varnish's malloc storage is in its RSS. (nginx's cache files are page cache: not counted.)
memfd_mb() {
  local total=0 size
  for p in $(pids_of "$1"); do
    for fd in /proc/$p/fd/*; do
      case $(readlink "$fd" 2>/dev/null) in
        /memfd:*) size=$(stat -L -c %s "$fd" 2>/dev/null || echo 0); total=$((total + (size + 4095) / 4096 * 4)) ;;
      esac
    done
  done
  echo $((total / 1024))
}

origin_start() {
  mkdir -p "$D/origin/obj" "$D/origin/logs"
  for s in 1k:1 128k:128 1m:1024; do
    f="$D/origin/obj/${s%%:*}"; [ -f "$f" ] || head -c $(( ${s##*:} * 1024 )) /dev/urandom > "$f"
  done
  [ -f "$D/origin/k.bin" ] || head -c 1024 /dev/urandom > "$D/origin/k.bin"
  cat > "$D/origin/nginx.conf" <<CONF
worker_processes 1; pid $D/origin/nginx.pid; error_log $D/origin/logs/error.log warn; daemon on;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  server { listen 127.0.0.1:18080; root $D/origin;
    add_header Cache-Control "public, max-age=3600" always;
    location /obj/ { }
    location /k/ { try_files /k.bin =404; } } }
CONF
  nginx -c "$D/origin/nginx.conf"
}
nginx_start() {
  rm -rf "$D/nginx/cache"; mkdir -p "$D/nginx/cache" "$D/nginx/logs"
  cat > "$D/nginx/nginx.conf" <<CONF
worker_processes 2; pid $D/nginx/nginx.pid; error_log $D/nginx/logs/error.log warn; daemon on;
events { worker_connections 8192; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  proxy_cache_path $D/nginx/cache levels=1:2 keys_zone=edge:64m max_size=2g inactive=1d use_temp_path=off;
  upstream origin { server 127.0.0.1:18080; keepalive 64; }
  server { listen 127.0.0.1:18081;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache edge; proxy_cache_lock on; proxy_cache_use_stale error timeout updating;
      proxy_cache_background_update on; add_header X-Cache \$upstream_cache_status; } } }
CONF
  nginx -c "$D/nginx/nginx.conf"
}
varnish_start() {
  rm -rf "$D/varnish"; mkdir -p "$D/varnish"
  cat > "$D/varnish/default.vcl" <<'VCL'
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "18080"; }
sub vcl_deliver { if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; } }
VCL
  varnishd -a 127.0.0.1:18082 -f "$D/varnish/default.vcl" -s malloc,512m -n "$D/varnish/n" \
    -P "$D/varnish/varnishd.pid" -p thread_pools=2 -p thread_pool_min=50 -p workspace_backend=128k
}
edge_start() {
  # An empty disk tier each time, as nginx's and Varnish's caches are: a disk tier left by
  # an earlier run would serve the first hits and promote them, which changes the figures.
  rm -rf "$D/edge-cdn/disk"; mkdir -p "$D/edge-cdn"
  "$EDGE_BIN" --origin http://127.0.0.1:18080 --listen 127.0.0.1:18083 --admin-listen none \
    --memory-size 512 --log-level warning --disk-path "$D/edge-cdn/disk" > "$D/edge-cdn.log" 2>&1 &
  echo $! > "$D/edge-cdn.pid"
  for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18083/ && return 0; sleep 0.1; done
  echo "edge-cdn did not start; log:" >&2; cat "$D/edge-cdn.log" >&2; return 1
}
stop_pidfile() { if [ -f "$1" ]; then kill "$(cat "$1")" 2>/dev/null || true; rm -f "$1"; fi; return 0; }
stop_all() {
  stop_pidfile "$D/edge-cdn.pid"; stop_pidfile "$D/varnish/varnishd.pid"
  stop_pidfile "$D/nginx/nginx.pid"; stop_pidfile "$D/origin/nginx.pid"
}
trap stop_all EXIT

# Two wrk scripts. Hot workloads send wrk's one prebuilt request (no Lua per request: on 2
# shared cores the load generator's own CPU per request narrows every server's lead);
# the 100k-key workload builds each request in Lua, each wrk thread with its own random
# sequence (with one seed, both threads asked for the same key at the same time).
report='done = function(summary, latency, requests)
  io.write(string.format("rps=%.0f mbps=%.1f p99_ms=%.3f errors=%d\n",
    summary.requests / (summary.duration / 1e6), summary.bytes / (summary.duration / 1e6) / 1e6,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end'
hot_lua="$D/wrk-hot.lua"
echo "$report" > "$hot_lua"
keys_lua="$D/wrk-keys.lua"
cat > "$keys_lua" <<LUA
local keys = $KEYS
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("id", threads) end
init = function(args) math.randomseed(os.time() * 1000 + id) end
request = function() return wrk.format("GET", wrk.path .. math.random(1, keys)) end
$report
LUA
measure() { # server workload url script
  curl -s -o /dev/null "$3" || true; curl -s -o /dev/null "$3" || true
  local out; out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$4" "$3" | tail -1)
  echo "# $1 $2 $out" >&2
  local rps mbps p99 errors
  rps=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$out"); mbps=$(sed -n 's/.*mbps=\([0-9.]*\).*/\1/p' <<<"$out")
  p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out"); errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")
  { echo "proxy.$1.$2.rps=$rps"; echo "proxy.$1.$2.p99_ms=$p99"; echo "proxy.$1.$2.mbps=$mbps"
    [ "${errors:-0}" = 0 ] || echo "proxy.$1.$2.errors=$errors"; } >> "$results"
}

fill_keys() { # server url: GET url1..url$KEYS once each, on 8 keep-alive connections
  local part=$(( (KEYS + 7) / 8 )) first last started=$SECONDS pids=()
  for i in 0 1 2 3 4 5 6 7; do
    first=$((i * part + 1)); last=$(( (i + 1) * part < KEYS ? (i + 1) * part : KEYS ))
    [ "$first" -le "$last" ] || continue
    timeout 300 curl -s -o /dev/null "$2[$first-$last]" > /dev/null & pids+=($!)
  done
  wait "${pids[@]}" # not a bare wait: edge-cdn is a background child too
  echo "# $1 filled $KEYS keys in $((SECONDS - started)) s" >&2
}

origin_start
for round in $(seq 1 "$ROUNDS"); do
suffix=""; [ "$ROUNDS" = 1 ] || suffix=".r$round"
for server in $SERVERS; do
  case $server in
    nginx) port=18081; nginx_start ;;
    varnish) port=18082; varnish_start ;;
    edge-cdn) port=18083; edge_start ;;
    *) echo "unknown server $server" >&2; exit 2 ;;
  esac
  sleep 1
  base="http://127.0.0.1:$port"
  for workload in $WORKLOADS; do
    case $workload in
      hot_1k) measure "$server" "hot_1k$suffix" "$base/obj/1k" "$hot_lua" ;;
      hot_128k) measure "$server" "hot_128k$suffix" "$base/obj/128k" "$hot_lua" ;;
      hot_1m) measure "$server" "hot_1m$suffix" "$base/obj/1m" "$hot_lua" ;;
      keys100k_1k)
        # 100k distinct objects: every key asked once (the fill), then the measured round of
        # random keys, all hits. A timed random fill covered only part of the keys, and less
        # the slower a server's misses, so the measured round mixed hits and misses unevenly.
        fill_keys "$server" "$base/k/"
        measure "$server" "keys100k_1k$suffix" "$base/k/" "$keys_lua" ;;
      *) echo "unknown workload $workload" >&2; exit 2 ;;
    esac
  done
  rss=$(rss_mb "$server"); memfd=$(memfd_mb "$server")
  echo "proxy.$server.rss_mb$suffix=$((rss + memfd))" >> "$results"
  [ "$memfd" = 0 ] || echo "proxy.$server.memfd_mb$suffix=$memfd" >> "$results"
  case $server in
    nginx) stop_pidfile "$D/nginx/nginx.pid" ;;
    varnish) stop_pidfile "$D/varnish/varnishd.pid" ;;
    edge-cdn) stop_pidfile "$D/edge-cdn.pid" ;;
  esac
  sleep 1
done
done
cat "$results"
