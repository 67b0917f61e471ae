#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image (Ubuntu 22.04, the
# default base image): the bundle is already unpacked in /autograder/source. Safe to run again.
#
# Python: Ubuntu 22.04's own python3 is 3.10 and the course needs 3.11 (tomllib, the pinned
# requirements), so 3.11 comes from the deadsnakes PPA, which builds current 3.11.x releases for
# Ubuntu LTS; an image that already has python3.11 with venv (a Python base-image variant) keeps it.
set -euo pipefail

ROOT=${AUTOGRADER_ROOT:-/autograder}
SOURCE=$ROOT/source
VENV=$ROOT/venv  # outside source/, so the course that graders copy stays small
PYTHON=python3.11
export DEBIAN_FRONTEND=noninteractive
# PostgreSQL's cluster takes its encoding from the locale it is created in: UTF-8, not SQL_ASCII.
export LANG=C.UTF-8 LC_ALL=C.UTF-8

has_python() { command -v "$PYTHON" >/dev/null && "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; }

apt-get update
if ! has_python; then
  apt-get install -y --no-install-recommends ca-certificates gnupg software-properties-common
  if ! grep -rqs deadsnakes /etc/apt/sources.list /etc/apt/sources.list.d/; then
    add-apt-repository -y ppa:deadsnakes/ppa
  fi
  apt-get update
  apt-get install -y --no-install-recommends "$PYTHON" "$PYTHON-venv"
fi

# The servers the course's tests talk to, and the sandbox that grades a submission.
apt-get install -y --no-install-recommends bubblewrap rabbitmq-server redis-server postgresql

# The tests connect as postgresql://postgres@localhost:5432/postgres without a password. Only this
# container can reach the server, and it lives for one submission.
if ! ls /etc/postgresql/*/main/pg_hba.conf >/dev/null 2>&1; then
  pg_createcluster --locale C.UTF-8 "$(ls /usr/lib/postgresql | sort -V | tail -n 1)" main --port 5432
fi
for hba in /etc/postgresql/*/main/pg_hba.conf; do
  cat >"$hba" <<'HBA'
# Written by the course autograder's setup.sh: no password for local connections.
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
host    all   all   ::1/128        trust
HBA
done

if [[ ! -x $VENV/bin/python ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$SOURCE/requirements.txt"

# Where bubblewrap cannot run in Gradescope's container, learner code runs as an unprivileged user
# (lab/sandbox.py), which needs this Python and nothing else of /autograder.
chmod o+x "$ROOT"
chmod -R o+rX "$VENV"
chmod 755 "$SOURCE/run_autograder"
if [[ -e $ROOT/run_autograder ]]; then chmod 755 "$ROOT/run_autograder"; fi

# Fail the build now, not on the first submission, if the harness cannot even start.
(cd "$SOURCE" && "$VENV/bin/python" -m lab --help >/dev/null)
echo "setup.sh: the autograder is ready (Python: $("$VENV/bin/python" --version))"
