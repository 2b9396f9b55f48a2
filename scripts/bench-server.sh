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
start_server() {
  DATA="$(mktemp -d)"
  AXONFLOW_RATE_LIMIT_PLUS_PER_MINUTE=10000000 AXONFLOW_DATABASE_DURABILITY="${DURABILITY:-process-crash}" \
    taskset -c 0 "$BIN" serve --data-dir "$DATA" --agent-listen 127.0.0.1:0 --orchestrator-listen 127.0.0.1:0 \
    --log-level warn > "$DATA/out" 2> "$DATA/err" &
  SERVER=$!
  for _ in $(seq 100); do
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

