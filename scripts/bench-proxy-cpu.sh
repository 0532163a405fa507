#!/usr/bin/env bash
# bench-proxy-cpu.sh — CPU time per request (process utime+stime from /proc / requests served) of edge-cdn
# builds and nginx, alternated (order reversed every other round), on private ports 28080-28083: steadier than
# req/s on a shared machine. PATHS: /obj/1k, /obj/128k, /obj/1m (hot hits), /k/ (100k keys), /k/new/ (every
# request a miss). Usage: ROUNDS=4 PATHS="/obj/1k /obj/1m" bash scripts/bench-proxy-cpu.sh \
#   base=/path/to/edge-cdn new=.build/release/edge-cdn nginx   (prints one line per run: rps, p99, cpu_us_per_req)
set -euo pipefail
D=${EDGE_BENCH_DIR:-/tmp/edge-bench-cpu}; mkdir -p $D/origin/obj $D/logs
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-5}; CONNS=${CONNS:-64}; THREADS=${THREADS:-2}
PATHS=${PATHS:-/obj/1k}
for s in 1k:1 128k:128 1m:1024; do f=$D/origin/obj/${s%%:*}; [ -f $f ] || head -c $(( ${s##*:} * 1024 )) /dev/urandom > $f; done
[ -f $D/origin/k.bin ] || head -c 1024 /dev/urandom > $D/origin/k.bin
cat > $D/origin.conf <<CONF
worker_processes 1; pid $D/origin.pid; error_log $D/logs/origin.log warn; daemon on;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  server { listen 127.0.0.1:28080; root $D/origin; add_header Cache-Control "public, max-age=3600" always;
    location /obj/ { } location /k/ { try_files /k.bin =404; } } }
CONF
cat > $D/nginx.conf <<CONF
worker_processes 2; pid $D/nginx.pid; error_log $D/logs/nginx.log warn; daemon on;
events { worker_connections 8192; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  proxy_cache_path $D/ncache levels=1:2 keys_zone=edgeb:64m max_size=2g inactive=1d use_temp_path=off;
  upstream origin { server 127.0.0.1:28080; keepalive 64; }
  server { listen 127.0.0.1:28081;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache edgeb; proxy_cache_lock on; add_header X-Cache \$upstream_cache_status; } } }
CONF
nginx -c $D/origin.conf
started=()
cleanup() { for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f $D/origin.pid ] && kill "$(cat $D/origin.pid)" 2>/dev/null || true; [ -f $D/nginx.pid ] && kill "$(cat $D/nginx.pid)" 2>/dev/null || true; }
trap cleanup EXIT
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
run_one() { # name binary
  local name=$1 bin=$2 pids port
  if [ "$name" = nginx ]; then
    rm -rf $D/ncache; nginx -c $D/nginx.conf; sleep 0.5
    pids=$(pgrep -P "$(cat $D/nginx.pid)" | tr '\n' ' '); port=28081
  else
    rm -rf $D/disk; "$bin" --origin http://127.0.0.1:28080 --listen 127.0.0.1:28083 --admin-listen none \
      --memory-size 512 --log-level warning --disk-path $D/disk > $D/logs/$name.log 2>&1 &
    pids=$!; started+=($pids); port=28083
    for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:28083/ && break; sleep 0.1; done
  fi
  for path in $PATHS; do
    url=http://127.0.0.1:$port$path
    curl -s -o /dev/null $url; curl -s -o /dev/null $url
    if [ "$path" = /k/ ]; then # every key once, so the measured round is all hits
      local fill=() part=12500; for i in 0 1 2 3 4 5 6 7; do
        timeout 300 curl -s -o /dev/null "$url[$((i * part + 1))-$(((i + 1) * part))]" >/dev/null & fill+=($!); done
      wait "${fill[@]}"; fi
    local t0 t1 out; t0=$(ticks $pids)
    out=$(wrk -t$THREADS -c$CONNS -d${SECS}s -s $D/wrk.lua $url | tail -1)
    t1=$(ticks $pids)
    local req; req=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$out")
    echo "$name $path $out cpu_us_per_req=$(awk -v t=$((t1-t0)) -v r=$req -v hz=$(getconf CLK_TCK) 'BEGIN{printf "%.2f", t*1e6/hz/r}') load=$(cut -d' ' -f1 /proc/loadavg)"
  done
  if [ "$name" = nginx ]; then kill "$(cat $D/nginx.pid)"; sleep 0.5; else kill $pids; wait $pids 2>/dev/null || true; fi
}
# /k/ draws from 100k keys, all asked once before (each wrk thread its own sequence); /k/new/ asks for a key never
# asked before on every request, so every request is a miss (the miss path's CPU).
cat > $D/wrk.lua <<LUA
local threads = 0
local counter = 0
setup = function(thread) threads = threads + 1; thread:set("id", threads) end
init = function(args) math.randomseed(os.time() * 1000 + id) end
request = function()
  local p = wrk.path
  if string.sub(p, -7) == "/k/new/" then
    counter = counter + 1
    p = p .. id .. "-" .. counter .. "-" .. math.random(1, 1000000000)
  elseif string.sub(p, -3) == "/k/" then
    p = p .. math.random(1, 100000)
  end
  return wrk.format("GET", p)
end
done = function(summary, latency, requests)
  io.write(string.format("rps=%.0f mbps=%.1f p99_ms=%.3f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), summary.bytes / (summary.duration / 1e6) / 1e6,
    latency:percentile(99) / 1000, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
LUA
for r in $(seq 1 $ROUNDS); do
  args=("$@"); if [ $((r % 2)) = 0 ]; then mapfile -t args < <(printf '%s\n' "$@" | tac); fi
  for a in "${args[@]}"; do run_one "${a%%=*}" "${a#*=}"; done
done
