#!/usr/bin/env bash
# Drives the real `vault serve` with schemathesis, from the served OpenAPI
# document, as each role: thousands of generated requests, valid and not.
# Fails on any 5xx, any status code, content type, header or body that the
# document does not declare. Usage: .ci/api-fuzz.sh [VAULT_BINARY] [EXAMPLES]
set -euo pipefail
bin=$(realpath "${1:-target/debug/vault}")
examples=${2:-15}
work=$(mktemp -d)
# schemathesis and hypothesis keep example caches in the working directory:
# run in a fresh one, so every run (here or in CI) generates the same cases.
cd "$work"
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" init --dir "$work/v" >/dev/null
cat >>"$work/v/vault.toml" <<'TOML'

[server]
max_upload_bytes = 1048576
rate_per_key = 1000000.0
burst_per_key = 1000000.0
rate_per_client = 1000000.0
burst_per_client = 1000000.0
TOML
c="$work/v/vault.toml"
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
t=$("$bin" --config "$c" --json tenant create fuzz)
tenant=$(echo "$t" | json_field tenant_id)
admin=$(echo "$t" | json_field api_key)
"$bin" --config "$c" --json serve --listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do
  base=$(grep -o 'http://[0-9.:]*' "$work/out" 2>/dev/null | head -n1 || true)
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/err" >&2; exit 1; }
for role in admin agent uploader auditor purge; do
  if [ "$role" = admin ]; then key=$admin; else
    key=$("$bin" --config "$c" --json apikey create --tenant "$tenant" --role "$role" | json_field api_key)
  fi
  echo "== schemathesis as $role"
  if ! schemathesis run "$base/openapi.json" -H "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$examples" --workers 1 --seed 1 >"$work/st.log" 2>&1; then
    sed -n '/FAILURES/,$p' "$work/st.log"
    exit 1
  fi
  tail -n 2 "$work/st.log"
done
if grep -q 'status=5' "$work/err"; then
  echo "the server answered 5xx:" >&2; grep 'status=5' "$work/err" >&2; exit 1
fi
