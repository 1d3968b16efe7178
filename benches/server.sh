#!/usr/bin/env bash
# HTTP service benchmark (issue #6). Against the release binary on loopback:
#   1. a SIZE_MIB (default 1024) upload and download through `vault serve`
#      (curl, streamed from/to files), with the server's peak RSS;
#   2. the same bytes through the vault's core put/get without HTTP
#      (examples/core_put.rs) and through a bare axum upload server that
#      writes plain files with fsync (examples/plain_upload.rs);
#   3. 200 KiB uploads with 16 concurrent connections for DURATION seconds
#      (wrk): uploads/s, p50 and p99 latency, beside the bare server.
# Prints a Markdown table with ratios taken within this one run.
#
#   bash benches/server.sh [SIZE_MIB] [DURATION_S]
# With BENCH_JSON=FILE it also writes the raw figures to FILE as JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
DURATION=${2:-15}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }

[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release -q -p vault-server --bin vault --example plain_upload --example core_put
bin=target/release
work=$(mktemp -d "${TMPDIR:-/var/tmp}/vault-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(aes|vaes|vpclmulqdq|sha_ni|avx2|avx512f)$' | tr '\n' ' ')
echo "machine: $cpu; $(nproc) cores; flags: $flags"

peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
start_server() { # $1 = log prefix, rest = command; sets ADDR and PID
  "${@:2}" >"$work/$1.out" 2>"$work/$1.err" &
  PID=$!
  pids+=("$PID")
  for _ in $(seq 1 100); do
    ADDR=$(grep -o 'http://[0-9.:]*' "$work/$1.out" 2>/dev/null | head -n1 || true)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2; cat "$work/$1.err" >&2; exit 1
}

# The vault, with limits out of the way of a benchmark.
"$bin/vault" init --dir "$work/v" >/dev/null
cat >>"$work/v/vault.toml" <<TOML

[server]
max_upload_bytes = $(( (SIZE_MIB + 1) << 20 ))
rate_per_key = 1000000.0
burst_per_key = 1000000.0
rate_per_client = 1000000.0
burst_per_client = 1000000.0
TOML
admin=$("$bin/vault" --config "$work/v/vault.toml" --json tenant create bench | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
start_server vault "$bin/vault" --config "$work/v/vault.toml" serve --listen 127.0.0.1:0
VAULT=$ADDR; VPID=$PID
agent=$(curl -sf -X POST "$VAULT/v1/api-keys" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d '{"role":"agent"}' | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
mkdir "$work/plain"
start_server plain "$bin/examples/plain_upload" "$work/plain"
PLAIN=$ADDR; PPID_=$PID

# The big file: a PDF header, then random bytes.
big="$work/big.pdf"
{ printf '%%PDF-1.7\n'; head -c $(( (SIZE_MIB << 20) - 9 )) /dev/urandom; } >"$big"
bytes=$(stat -c %s "$big")
rss_idle=$(peak_kib "$VPID")

t() { curl -sS -o "$2" -w '%{http_code} %{time_total}\n' "${@:3}" "$1"; }
mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1048576 }'; }

read -r code up_v < <(t "$VAULT/v1/applicants/bench/documents?category=bank_statement" "$work/up.json" -X POST -T "$big" -H "Authorization: Bearer $agent" -H 'Content-Type: application/pdf')
[ "$code" = 201 ] || { echo "vault upload failed: $code $(cat "$work/up.json")" >&2; exit 1; }
id=$(sed 's/.*"id":"\([^"]*\)".*/\1/' "$work/up.json")
read -r code down_v < <(t "$VAULT/v1/documents/$id" /dev/null -H "Authorization: Bearer $agent")
[ "$code" = 200 ] || { echo "vault download failed: $code" >&2; exit 1; }
rss_big=$(peak_kib "$VPID")

read -r code up_p < <(t "$PLAIN/upload" "$work/name" -X POST -T "$big")
[ "$code" = 201 ] || { echo "plain upload failed: $code" >&2; exit 1; }
read -r code down_p < <(t "$PLAIN/files/$(cat "$work/name")" /dev/null)
rss_plain=$(peak_kib "$PPID_")

"$bin/vault" init --dir "$work/core" >/dev/null
read -r up_c down_c _ < <("$bin/examples/core_put" "$work/core/vault.toml" "$big")

# Small uploads: 16 connections, 200 KiB each.
small="$work/small.pdf"
{ printf '%%PDF-1.7\n'; head -c $(( 200 * 1024 - 9 )) /dev/urandom; } >"$small"
cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/pdf"
local key = os.getenv("KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
LUA
load() { # $1 url, $2 key -> "rps p50 p99 non2xx"
  BODY_FILE="$small" KEY="$2" wrk -t2 -c16 -d"${DURATION}s" --latency -s "$work/post.lua" "$1" >"$work/wrk.out"
  local rps p50 p99 bad
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
  bad=$(awk '/Non-2xx/ {print $5}' "$work/wrk.out"); bad=${bad:-0}
  echo "$rps $p50 $p99 $bad"
}
read -r rps_v p50_v p99_v bad_v < <(load "$VAULT/v1/applicants/load/documents?category=pay_stub" "$agent")
read -r rps_p p50_p p99_p bad_p < <(load "$PLAIN/upload" "")
[ "$bad_v" = 0 ] || echo "warning: $bad_v vault uploads were not 2xx" >&2

# Machine-readable results for benches/run.py: seconds, KiB, and wrk's own
# latency strings.
if [ -n "${BENCH_JSON:-}" ]; then
  cat >"$BENCH_JSON" <<JSON
{"bytes": $bytes,
 "upload_s": {"vault": $up_v, "core": $up_c, "plain": $up_p},
 "download_s": {"vault": $down_v, "core": $down_c, "plain": $down_p},
 "rss_kib": {"vault_idle": $rss_idle, "vault": $rss_big, "plain": $rss_plain},
 "small": {"duration_s": $DURATION, "connections": 16,
   "vault": {"rps": $rps_v, "p50": "$p50_v", "p99": "$p99_v", "non2xx": $bad_v},
   "plain": {"rps": $rps_p, "p50": "$p50_p", "p99": "$p99_p", "non2xx": $bad_p}}}
JSON
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<TABLE

| ${SIZE_MIB} MiB, one client | vault serve | core put/get (no HTTP) | bare axum file server |
|---|---|---|---|
| upload | $(mbps "$up_v") MiB/s | $(mbps "$up_c") MiB/s | $(mbps "$up_p") MiB/s |
| download | $(mbps "$down_v") MiB/s | $(mbps "$down_c") MiB/s | $(mbps "$down_p") MiB/s |
| server peak RSS | $(( rss_big / 1024 )) MiB (idle $(( rss_idle / 1024 )) MiB) | | $(( rss_plain / 1024 )) MiB |

- throughput, HTTP upload / core put: $(ratio "$up_c" "$up_v")x; HTTP download / core get: $(ratio "$down_c" "$down_v")x
- throughput, vault upload / bare upload: $(ratio "$up_p" "$up_v")x; vault download / bare download: $(ratio "$down_p" "$down_v")x

| 200 KiB uploads, 16 connections, ${DURATION} s | uploads/s | p50 | p99 |
|---|---|---|---|
| vault serve | $rps_v | $p50_v | $p99_v |
| bare axum file server | $rps_p | $p50_p | $p99_p |

- vault / bare: $(ratio "$rps_v" "$rps_p")x the uploads per second
TABLE
