# Sourced by scripts/bench-http and scripts/bench-cpu (from the repository's root, BIN set): one benchmark
# server at a time, pinned to core 0, on an empty data directory.
SERVER=""
DATA=""
stop_server() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    "$BIN" audit verify --data-dir "$DATA" | tail -1
    rm -rf "$DATA"
  fi
  SERVER=""
}

# Starts a server on an empty data directory; sets SERVER, DATA, AGENT, KEY, ADMIN and writes the request body.
# WRAP (a command and its options, say valgrind's) runs the server under it; STARTUP_SECONDS (default 10) is how
# long it may take to listen.
start_server() {
  DATA="$(mktemp -d)"
  # shellcheck disable=SC2086
  AXONFLOW_RATE_LIMIT_PLUS_PER_MINUTE=10000000 AXONFLOW_DATABASE_DURABILITY="${DURABILITY:-process-crash}" \
    taskset -c 0 ${WRAP:-} "$BIN" serve --data-dir "$DATA" --agent-listen 127.0.0.1:0 \
    --orchestrator-listen 127.0.0.1:0 --log-level "${LOG_LEVEL:-warn}" > "$DATA/out" 2> "$DATA/err" &
  SERVER=$!
  for _ in $(seq "$((${STARTUP_SECONDS:-10} * 10))"); do
    kill -0 "$SERVER" 2>/dev/null || { cat "$DATA/err" >&2; exit 1; }
    grep -q '^listening' "$DATA/out" 2>/dev/null && break
    sleep 0.1
  done
  AGENT="$(sed -n 's/.*agent=\([^ ]*\).*/\1/p' "$DATA/out")"
  KEY="$("$BIN" license issue --data-dir "$DATA" --tenant default --service bench --tier PLUS \
    --permission query --permission policy:evaluate --expires 2099-01-01 2>/dev/null)"
  ADMIN="$(cat "$DATA/admin.key")"
  # A 1 KiB prompt with one email address in it (so detection and redaction both work).
  PROMPT="$(python3 -c 'print(("Please summarise the quarterly revenue report for the northern region and list the top three risks. " * 10)[:990] + " jane@example.com")')"
  printf '{"query": "%s", "context": {"user_role": "analyst"}}' "$PROMPT" > "$DATA/body.json"
}

metrics() {
  curl -sk -H "Authorization: Bearer $ADMIN" "$AGENT/metrics"
}

# How long pre-checks waited for their audit record: the histogram's buckets (seconds). The tail at fixed loads
# is here (BENCHMARKS.md).
audit_waits() {
  grep -E '^axonflow_decision_stage_duration_seconds_bucket\{le="(0\.0008|0\.0016|0\.0032|0\.0064|0\.0128|0\.0256|\+Inf)",stage="audit"' \
    <<< "$(metrics)"
}

# "N of M": the pre-checks that waited longer than $1 seconds (a bucket's bound) for their audit record, of all.
audit_waits_over() {
  local m total within
  m="$(metrics)"
  total=$(grep -E '^axonflow_decision_stage_duration_seconds_count\{stage="audit"' <<< "$m" | awk '{print $2}')
  within=$(grep -F "axonflow_decision_stage_duration_seconds_bucket{le=\"$1\",stage=\"audit\"}" <<< "$m" | awk '{print $2}')
  echo "$((total - within)) of $total"
}

# One fixed offered load of pre-checks at RATE a second (oha on core 1, HTTP/2, 16 connections × 8 streams,
# latencies counted from when oha's schedule meant to send each request), one run of WARMUP (default 2) +
# DURATION seconds on the same connections. Prints p50 / p99 / p99.9 of the requests scheduled after the
# warm-up, and of the whole run. The whole run includes the start: 16 connections being opened (TLS
# handshakes on the server's core, oha's own start) while requests are already scheduled; at 10,000 req/s its
# first ~100 ms took 13-54 ms each, the server's own request durations staying under 6.4 ms (BENCHMARKS.md,
# eighteenth run). Until 2026-12-05 the warm-up was a run of its own and the measured run opened new
# connections: its "from 200 ms on" figure left out their handshakes.
fixed_load() {
  local rate="$1" duration="$2" warmup="${WARMUP:-2}"
  taskset -c 1 oha --no-tui --insecure --http2 -c 16 -p 8 -q "$rate" -m POST \
    -H 'content-type: application/json' -H "x-license-key: $KEY" -D "$DATA/body.json" \
    -z "$((warmup + duration))s" --latency-correction --output-format csv -o "$DATA/fixed.csv" \
    "$AGENT/api/policy/pre-check"
  python3 - "$DATA/fixed.csv" "$warmup" <<'PY'
import collections, csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
warmup = float(sys.argv[2])
statuses = collections.Counter(r["status"] for r in rows)
answered = [(float(r["request-start"]), float(r["request-duration"])) for r in rows if r["status"] == "200"]
def summary(latencies):
    v = sorted(latencies)
    at = lambda q: v[min(len(v) - 1, int(len(v) * q))] * 1000
    return f"p50 {at(0.5):.2f} ms, p99 {at(0.99):.2f} ms, p99.9 {at(0.999):.2f} ms ({len(v)} requests)"
print("  statuses: " + ", ".join(f"[{s}] {n}" for s, n in sorted(statuses.items())))
print("  after the warm-up: " + summary(d for s, d in answered if s >= warmup))
print("  whole run:         " + summary(d for _, d in answered))
PY
}
