#!/usr/bin/env bash
# Checks the clients as a user meets them (make check-clients; CI runs it):
#  - the TypeScript client and its example compile under tsc --strict;
#  - openapi-typescript makes of the spec a running motorpool serves (/openapi.json and
#    /openapi.yaml) exactly the committed clients/typescript/schema.d.ts;
#  - the TypeScript example and the Go example (examples/client) run against that server;
#  - the Go example's program imports nothing of the server, kin-openapi or YAML.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "tsc --strict clients/typescript"
rm -rf clients/typescript/dist
npx --no-install tsc -p clients/typescript # to clients/typescript/dist (ignored by git)

go build -o "$tmp/motorpool" .
go build -o "$tmp/client" ./examples/client
if bad=$(go list -deps ./examples/client | grep -E 'motorpool/(gen|api|impl|storage)|kin-openapi|yaml'); then
	echo "examples/client pulls in server packages:" >&2
	echo "$bad" >&2
	exit 1
fi

HTTP_ADDR=127.0.0.1:0 SQLITE_PATH="$tmp/motorpool.db" DATA_DIR="$tmp/data" LOG_LEVEL=warn \
	"$tmp/motorpool" serve >"$tmp/out" 2>&1 &
pid=$!
url=
for _ in $(seq 1 100); do
	url=$(sed -n 's/^motorpool listening on \(http:[^ ]*\)$/\1/p' "$tmp/out")
	[ -n "$url" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$url" ]; then
	echo "motorpool did not start:" >&2
	cat "$tmp/out" >&2
	exit 1
fi

for doc in openapi.json openapi.yaml; do
	echo "openapi-typescript $url/$doc"
	npx --no-install openapi-typescript "$url/$doc" --output "$tmp/served.d.ts" --silent
	if ! diff -u clients/typescript/schema.d.ts "$tmp/served.d.ts"; then
		echo "the types generated from the served $doc differ from clients/typescript/schema.d.ts" >&2
		exit 1
	fi
done

echo "TypeScript example against $url"
MOTORPOOL_URL=$url node clients/typescript/dist/example.js
echo "Go example against $url"
"$tmp/client" -url "$url" -email grace@example.com
