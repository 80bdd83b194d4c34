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
