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
# Go fuzzes one target per invocation. Each runs a fixed number of inputs, about 8 s of fuzzing on a
# quiet 2-core machine: a duration (-fuzztime=8s) can fail a target that found nothing with "context
# deadline exceeded", a race in Go's fuzz coordinator at the deadline (go.dev/issue/75804, fixed in
# Go 1.27); a count has no deadline. QUIKLY_FUZZTIME (e.g. 10m) replaces every count for longer runs.
# RELIABILITY.md ("Fuzzing") lists the targets and the longer runs made of each.
fuzz_targets='FuzzDecode ./internal/api 10000x
FuzzAPIRequest ./internal/api 10000x
FuzzMoneyFormatParse ./internal/proposal 10000x
FuzzParseMoney ./internal/proposal 100000x
FuzzTotal ./internal/proposal 100000x
FuzzCursor ./internal/app 5000x
FuzzListenVerify ./internal/listen 20000x
FuzzDialer ./internal/netguard 100000x
FuzzControl ./internal/netguard 100000x
FuzzValidateURL ./internal/webhook 50000x
FuzzRender ./internal/render 10000x'
# A new target must be added above, or CI would never fuzz it.
for f in $(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' internal cmd | cut -c6- | sort -u); do
  grep -q "^$f " <<<"$fuzz_targets" || { echo "fuzz target $f is missing from scripts/test.sh"; exit 1; }
done
# Each input that finds new coverage is minimized first, by default for up to 60 s, and no other
# input runs meanwhile: FuzzRender (five strings) spent 40 of its 48 s minimizing. CI caps each
# minimization at 200 runs of the target; longer runs (QUIKLY_FUZZTIME) keep Go's default.
minimize=200x
if [ -n "${QUIKLY_FUZZTIME:-}" ]; then minimize=60s; fi
while read -r target pkg execs; do
  fuzztime="${QUIKLY_FUZZTIME:-$execs}"
  echo "-- $target ($pkg, $fuzztime)"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime="$minimize" "$pkg" </dev/null
done <<<"$fuzz_targets"
