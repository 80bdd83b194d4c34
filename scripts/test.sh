#!/usr/bin/env bash
# Runs every check and test of Quikly Webhooks on a fresh machine: installs what is missing
# (Chromium for the browser tests), makes sure PostgreSQL is up, then vet, gofmt and go test -race;
# the end-to-end suites run twice, on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL: the machine's server on 127.0.0.1:5432 (trust auth); start it if it is down.
if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  if ls /etc/postgresql >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
  fi
fi
export QUIKLY_TEST_DATABASE_URL="${QUIKLY_TEST_DATABASE_URL:-postgres://root@127.0.0.1:5432/test}"

# Chromium and npm (for axe-core) for the web UI's browser tests.
bash .ci/install-chromium.sh

go mod download
echo "== go vet"
go vet ./...
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
echo "== end-to-end tests again on PostgreSQL"
# (In cmd/quikly, the kill -9, SIGTERM and listen tests take testenv's database; the others repeat.)
QUIKLY_TEST_BACKEND=postgres go test -race -count=1 -timeout 20m ./internal/e2e/ ./internal/ui/... ./cmd/quikly/
echo "== fuzz: a short run of each fuzz target (plain go test above already ran their seed corpora)"
# Go fuzzes one target per invocation: 11 targets × QUIKLY_FUZZTIME (8s by default) = 88 s of fuzzing,
# about 2.5 minutes of wall time with the instrumented builds.
# RELIABILITY.md ("Fuzzing") lists the targets and the longer runs made of each.
fuzz_targets='FuzzDecode ./internal/api
FuzzAPIRequest ./internal/api
FuzzMoneyFormatParse ./internal/proposal
FuzzParseMoney ./internal/proposal
FuzzTotal ./internal/proposal
FuzzCursor ./internal/app
FuzzListenVerify ./internal/listen
FuzzDialer ./internal/netguard
FuzzControl ./internal/netguard
FuzzValidateURL ./internal/webhook
FuzzRender ./internal/render'
# A new target must be added above, or CI would never fuzz it.
for f in $(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' internal cmd | cut -c6- | sort -u); do
  grep -q "^$f " <<<"$fuzz_targets" || { echo "fuzz target $f is missing from scripts/test.sh"; exit 1; }
done
fuzztime="${QUIKLY_FUZZTIME:-8s}"
while read -r target pkg; do
  echo "-- $target ($pkg, $fuzztime)"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" </dev/null
done <<<"$fuzz_targets"
