#!/usr/bin/env bash
# The infra checks of make test: cfn-lint on every template, then make deploy against moto and
# the AWS API asked what it made (tests/infra/test_infra.py).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> cfn-lint"
cfn-lint infra/*.yaml
# The templates as `make deploy` renders them for the example account, too.
(
  source infra/accounts/example.env
  for t in notifier forwarder; do
    python3 scripts/synth.py "infra/$t.yaml" "target/infra-lint/$t.yaml" "$ADMIN_ROLE_ARNS" "$ADMIN_ROLE_PATTERNS"
  done
)
cfn-lint --ignore-checks W3002 -- target/infra-lint/*.yaml
echo "==> deploy to moto and check"
scripts/with-moto.sh python -m pytest -q tests/infra
