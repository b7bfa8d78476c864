#!/usr/bin/env bash
# Run the MCP conformance suite's authorization-server scenarios against the
# standalone bmm-oauth server, answering the authorization request headlessly.
#
#   examples/oauth-standalone/conformance.sh
#
# Needs Node >= 22; when the installed node is older, node@22 is installed from
# the npm registry into $BMM_TOOLS_DIR (default ~/.cache/bmm-tools).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
AS_PORT=${AS_PORT:-9400}
CB_PORT=${CB_PORT:-9401}
ISSUER="http://127.0.0.1:${AS_PORT}"
RESOURCE=${RESOURCE:-http://127.0.0.1:9402/mcp}
CONFORMANCE=${CONFORMANCE:-@modelcontextprotocol/conformance@0.2.0-alpha.12}
TOOLS=${BMM_TOOLS_DIR:-$HOME/.cache/bmm-tools}
OUT=$(mktemp -d)

node_major() { node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  if [ ! -x "$TOOLS/node22/node_modules/.bin/node" ]; then
    mkdir -p "$TOOLS/node22"
    (cd "$TOOLS/node22" && npm install --silent --no-audit --no-fund node@22 >/dev/null)
  fi
  export PATH="$TOOLS/node22/node_modules/.bin:$PATH"
fi
echo "node $(node --version)"

cd "$ROOT"
cargo build --quiet -p example-oauth-standalone
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/example-oauth-standalone"
"$BIN" --port "$AS_PORT" --resource "$RESOURCE" >"$OUT/server.log" 2>&1 &
SERVER=$!
CONF=""
cleanup() {
  [ -n "$CONF" ] && kill "$CONF" 2>/dev/null || true
  kill "$SERVER" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 100); do
  curl -fsS "$ISSUER/.well-known/oauth-authorization-server" >/dev/null 2>&1 && break
  sleep 0.1
done

# A public client registered for the suite's loopback callback.
CLIENT_ID=$(curl -fsS -X POST "$ISSUER/register" -H 'content-type: application/json' \
  -d "{\"redirect_uris\":[\"http://127.0.0.1:${CB_PORT}/callback\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"client_name\":\"conformance\"}" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_id))')

npx --yes "$CONFORMANCE" authorization --url "$ISSUER" --client-id "$CLIENT_ID" \
  --resource "$RESOURCE" --port "$CB_PORT" -o "$OUT/results" >"$OUT/conformance.log" 2>&1 &
CONF=$!

# The suite prints the authorization URL and waits for the callback; the
# standalone server approves without a page, so following its redirect answers it.
ANSWERED=""
for _ in $(seq 600); do
  URL=$(grep -m1 "^${ISSUER}/authorize?" "$OUT/conformance.log" || true)
  if [ -n "$URL" ]; then
    curl -fsS -L -o /dev/null "$URL"
    ANSWERED=yes
    break
  fi
  kill -0 "$CONF" 2>/dev/null || break
  sleep 0.2
done

STATUS=0
wait "$CONF" || STATUS=$?
CONF=""
cat "$OUT/conformance.log"
[ -n "$ANSWERED" ] || { echo "the suite never printed an authorization URL"; exit 1; }
exit "$STATUS"
