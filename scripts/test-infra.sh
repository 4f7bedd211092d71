#!/usr/bin/env bash
# The infra checks of make test: cfn-lint on every template, then make deploy against moto and
# the AWS API asked what it made (tests/infra/test_infra.py).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> cfn-lint"
# The templates as committed hold no rules (synth.py renders them in), so their switches go unused.
cfn-lint --ignore-checks W8001 -- infra/*.yaml
# The templates as `make deploy` renders them for the example account, too.
(
  source scripts/prologue.sh
  # shellcheck disable=SC2046
  load_settings infra/accounts/example.env $(grep -oE '^[A-Z_]+=' infra/accounts/example.env | tr -d =)
  # The permission sets given as ARNs (a deploy resolves the names with `privwatch admins`).
  ADMIN_PERMISSION_SET_ARNS=$(tr ' ' '\n' <<<"$ADMIN_PERMISSION_SETS" | grep '^arn:' || true)
  export ADMIN_PERMISSION_SET_ARNS
  for t in notifier forwarder spoke; do
    python3 scripts/synth.py "infra/$t.yaml" "target/infra-lint/$t.yaml" "$ADMIN_ROLE_ARNS" "$ADMIN_ROLE_PATTERNS"
  done
  # An OU's additional admin roles: only the admin-role rules (the root-API switch goes unused).
  python3 scripts/synth.py infra/spoke.yaml target/infra-lint-ou/spoke-ou.yaml "" "*DbAdmin*" --admin-roles-only
)
cfn-lint --ignore-checks W3002 -- target/infra-lint/*.yaml
cfn-lint --ignore-checks W8001 -- target/infra-lint-ou/spoke-ou.yaml
echo "==> cfn-guard: the IAM, invoke, encryption and failure-path policy"
if ! [ -x .tools/bin/cfn-guard ] || ! .tools/bin/cfn-guard --version | grep -q "3.2.1"; then
  cargo install --quiet cfn-guard --version 3.2.1 --locked --root .tools
fi
.tools/bin/cfn-guard test --rules-file infra/policy/privwatch.guard --test-data infra/policy/privwatch_tests.yaml >target/guard-test.log \
  || { cat target/guard-test.log; exit 1; }
.tools/bin/cfn-guard validate --rules infra/policy/privwatch.guard \
  --data target/infra-lint/notifier.yaml --data target/infra-lint/forwarder.yaml \
  --data target/infra-lint/spoke.yaml --data target/infra-lint-ou/spoke-ou.yaml --show-summary fail
echo "==> deploy to moto and check"
scripts/with-moto.sh python -m pytest -q tests/infra
