#!/usr/bin/env bash
# profile-shared-retains.sh — which objects every event loop retains on a hot hit, and where.
#
# A retain or release is an atomic write to the object's reference count. When all event
# loops serve the same hot entry, an object they all retain is a cache line their cores
# take turns owning, on every request. This counts, per request, the reference-count
# operations on heap objects that two or more threads touch, by object type and call
# site, with uprobes on the Swift runtime (perf; needs root). The counts are exact
# (not sampled) and per RAM hit (the entry's own retain, one per hit, is the unit): use it
# before and after a change to the hot path.
#
# Usage: bash scripts/profile-shared-retains.sh [path/to/edge-cdn] [url-path]
#   (default: .build/release/edge-cdn, /obj/1k: a hot 1 KiB hit; /k/ draws from 100k keys)
# Ports 28180-28183 (private); wrk -t2 -c64 for 0.5 s under the probes (they slow it down).
# x86-64 only (the probes read the first argument from %di); needs root for the uprobes.
set -euo pipefail
BIN=${1:-.build/release/edge-cdn}; URLPATH=${2:-/obj/1k}
D=${EDGE_PROFILE_DIR:-/tmp/edge-profile-retains}; mkdir -p "$D/origin/obj" "$D/logs"
command -v perf >/dev/null && command -v wrk >/dev/null && command -v nginx >/dev/null || {
  echo "needs perf, wrk and nginx (apt-get install linux-perf wrk nginx-light)" >&2; exit 1; }
LIB=$(ldd "$BIN" | awk '/libswiftCore.so/ {print $3}')
[ -n "$LIB" ] || { echo "$BIN is not linked to libswiftCore.so" >&2; exit 1; }
[ -f $D/origin/obj/1k ] || head -c 1024 /dev/urandom > $D/origin/obj/1k
[ -f $D/origin/k.bin ] || head -c 1024 /dev/urandom > $D/origin/k.bin
cat > $D/origin.conf <<CONF
worker_processes 1; pid $D/origin.pid; error_log $D/logs/origin.log warn; daemon on;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:28180; root $D/origin; add_header Cache-Control "public, max-age=3600" always;
    location /obj/ { } location /k/ { try_files /k.bin =404; } } }
CONF
cat > $D/wrk.lua <<'LUA'
init = function(args) math.randomseed(os.time()) end
request = function()
  local p = wrk.path
  if string.sub(p, -3) == "/k/" then p = p .. math.random(1, 100000) end
  return wrk.format("GET", p)
end
done = function(summary, latency, requests) io.write(string.format("requests=%d\n", summary.requests)) end
LUA
[ "$(uname -m)" = x86_64 ] || { echo "x86-64 only: the probes read %di" >&2; exit 1; }
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  [ -f "$D/origin.pid" ] && kill "$(cat "$D/origin.pid")" 2>/dev/null || true
  perf probe -q -d 'probe_libswiftCore:edge_*' 2>/dev/null || true
}
trap cleanup EXIT
perf probe -q -d 'probe_libswiftCore:edge_*' 2>/dev/null || true # left by a killed run
probes=()
# rc: the reference-count word; an immortal object's low 32 bits are all set, and a
# retain or release of it writes nothing.
for f in swift_retain swift_retain_n swift_release swift_release_n; do
  if perf probe -q -x "$LIB" "edge_$f=$f obj=%di:u64 isa=+0(%di):u64 rc=+8(%di):u64"; then
    probes+=("probe_libswiftCore:edge_$f")
  fi
done
[ ${#probes[@]} = 4 ] || { echo "perf probe failed (root? a perf with uprobes?)" >&2; exit 1; }
nginx -c $D/origin.conf
"$BIN" --origin http://127.0.0.1:28180 --listen 127.0.0.1:28183 --admin-listen none --memory-size 512 \
  --log-level warning --disk-path $D/disk > $D/logs/edge.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:28183/ && break; sleep 0.1; done
kill -0 $pid 2>/dev/null || { echo "edge-cdn did not start: $D/logs/edge.log" >&2; exit 1; }
url=http://127.0.0.1:28183$URLPATH
curl -s -o /dev/null $url; curl -s -o /dev/null $url
wrk -t2 -c64 -d3s -s $D/wrk.lua $url > /dev/null # warm: connections open, keys filled and hit once
events=$(IFS=,; echo "${probes[*]}")
rm -f $D/perf.data $D/perf.data.old
perf record -q -m 1024 -e "$events" -g -p $pid -o $D/perf.data -- sleep 0.5 >/dev/null &
rec=$!
wrk -t2 -c64 -d1s -s $D/wrk.lua $url > /dev/null
wait $rec
lost=$(perf report -i $D/perf.data --stats 2>/dev/null | awk '/LOST/ {print $NF; exit}') || true
[ -z "$lost" ] || [ "$lost" = 0 ] || echo "warning: perf lost $lost records: the counts are a lower bound" >&2
base=$(perf script -i $D/perf.data --show-mmap-events 2>/dev/null | awk -v b="$(readlink -f "$BIN")" \
  '/PERF_RECORD_MMAP2/ && index($0, b) { match($0, /\[0x[0-9a-f]+/); print substr($0, RSTART + 1, RLENGTH - 1); exit }') || true
[ -n "$base" ] || { echo "no mapping of $BIN in the recording" >&2; exit 1; }
perf script -i $D/perf.data -F tid,event,trace,ip,sym 2>/dev/null > $D/events.txt || true
python3 - "$D/events.txt" "$base" "$BIN" <<'PY'
import collections, re, subprocess, sys
path, base, binary = sys.argv[1], int(sys.argv[2], 16), sys.argv[3]
symbols = {}
for line in subprocess.run(["nm", binary], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3: symbols[int(parts[0], 16)] = parts[2]
def demangle(name):
    return subprocess.run(["swift", "demangle", "--simplified", "--compact", name], capture_output=True, text=True).stdout.strip()
threads = collections.defaultdict(collections.Counter)
sites = collections.defaultdict(collections.Counter)
isas = {}
immortal = set()
retains = collections.Counter()
for block in open(path).read().split("\n\n"):
    lines = block.strip().split("\n")
    m = re.match(r"\s*(\d+)\s+probe_libswiftCore:edge_(\w+):.*obj=(\d+) isa=(\d+) rc=(\d+)", lines[0])
    if not m: continue
    tid, op, obj, isa, rc = m.group(1), m.group(2), int(m.group(3)), m.group(4), int(m.group(5))
    site = "?"
    for line in lines[2:]:
        fields = line.split(None, 1)
        if len(fields) == 2 and "@plt" not in fields[1] and "swift_re" not in fields[1]:
            site = re.sub(r"\+0x[0-9a-f]+$", "", fields[1].split(" (")[0]); break
    if not 4096 < obj < 1 << 47: continue  # null, tagged or small values: nothing written
    isas[obj] = int(isa)
    if rc & 0xFFFFFFFF == 0xFFFFFFFF: immortal.add(obj)
    if op == "swift_retain": retains[obj] += 1
    threads[obj][tid] += 1
    sites[obj][(op, site)] += 1
if not symbols: sys.exit(f"no symbols in {binary} (stripped?)")
names = {}
def kind_of(obj):
    isa = isas.get(obj)
    if obj not in names:
        name = symbols.get(isa - base) if isa and isa > base else None
        names[obj] = demangle(name) if name else None
    return names[obj]
# The RAM tier retains the entry it serves once per hit: the unit of the figures.
hits = sum(n for obj, n in retains.items() if (kind_of(obj) or "").endswith("MemoryStore.Entry"))
if hits == 0: sys.exit("no RAM hit seen (the entry's retain is the unit): is the path cached and in RAM?")
requests = hits
shared = [o for o, t in threads.items() if sum(1 for n in t.values() if n >= 20) >= 2]
rows = []
for o in shared:
    kind = kind_of(o) or "(type not in the binary: a runtime or library class, or a generic one)"
    if o in immortal: kind = "(immortal, its count is never written) " + kind
    rows.append((sum(threads[o].values()) / requests, o, kind))
rows.sort(reverse=True)
print(f"hits_sampled={hits}")
written = sum(r[0] for r in rows if not r[2].startswith("(immortal"))
print(f"shared_refcount_writes_per_hit={written:.2f}")
for count, obj, kind in rows:
    print(f"{count:6.2f}/hit  {kind}")
    for (op, site), n in sites[obj].most_common(3):
        print(f"          {n / requests:5.2f} {op} in {demangle(site)[:110]}")
PY
