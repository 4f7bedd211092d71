#!/usr/bin/env bash
# Runs a command with a local moto server (AWS emulator; scripts/moto_server.py: moto plus the
# Lambda account settings it lacks) on a free loopback port, exported as
# PRIVWATCH_MOTO_URL (and required: tests that need it fail instead of skipping). Stops it after.
set -euo pipefail
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
# AWS's managed policies (AdministratorAccess, ReadOnlyAccess…) exist, as in a real account:
# `privwatch admins` is tested against roles they are attached to.
MOTO_IAM_LOAD_MANAGED_POLICIES=true python3 scripts/moto_server.py -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null || { echo "moto did not start (target/moto.log)" >&2; exit 1; }
# The AWS CLI's endpoint says `localhost`: moto finds the bucket of a template passed by URL
# (`cloudformation deploy --s3-bucket`, as on AWS) only in a URL on localhost or amazonaws.com.
export PRIVWATCH_MOTO_URL="http://127.0.0.1:$port" PRIVWATCH_REQUIRE_MOTO=1 AWS_ENDPOINT_URL="http://localhost:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
"$@"
