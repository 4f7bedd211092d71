# The part of scripts/deploy.sh and scripts/deploy-org.sh that is the same for both: reading the
# settings file as written, the AWS endpoint and profiles, the deploy bucket, and the checks that
# must pass before anything is created. Sourced, not run.

mkdir -p target

# load_settings FILE KEY…: every KEY unset, then set from FILE as the user wrote it
# (scripts/settings.py: no shell expansion; an unknown key is an error).
load_settings() {
  local file="$1" key value pairs
  shift
  unset "$@"
  pairs=$(python3 scripts/settings.py "$file" "$@" | base64 -w0) || exit 2
  while IFS= read -r -d '' key && IFS= read -r -d '' value; do
    printf -v "$key" '%s' "$value"
  done < <(base64 -d <<<"$pairs")
}

# profile_args NAME PROFILE: the array NAME gets `--profile PROFILE`, or nothing. Against an
# emulator (AWS_ENDPOINT_URL) a profile is used only if it is configured on this machine, so the
# committed examples (whose profiles exist nowhere) run as they are, and tests can still act as
# another account through a profile of their own.
profile_args() {
  local -n into="$1"
  into=()
  [ -n "$2" ] || return 0
  if [ -n "${AWS_ENDPOINT_URL:-}" ] && ! python3 -c 'import sys, botocore.session
sys.exit(sys.argv[1] not in botocore.session.Session().available_profiles)' "$2"; then
    return 0
  fi
  into=(--profile "$2")
}

# ensure_bucket PROFILE_ARRAY BUCKET REGION: the deploy bucket (the function's zip, the templates).
ensure_bucket() {
  local -n as="$1"
  local bucket="$2" region="$3"
  if ! aws "${as[@]}" s3api head-bucket --bucket "$bucket" --region "$region" >/dev/null 2>&1; then
    echo "==> creating the deploy bucket s3://$bucket"
    if [ "$region" = us-east-1 ]; then
      aws "${as[@]}" s3api create-bucket --bucket "$bucket" --region "$region" >/dev/null
    else
      aws "${as[@]}" s3api create-bucket --bucket "$bucket" --region "$region" \
        --create-bucket-configuration "LocationConstraint=$region" >/dev/null
    fi
  fi
}

# with_us_east_1 WHO REGION…: the regions, us-east-1 added if it is missing (with a line saying
# why). IAM, root's IAM calls, the global STS endpoint and root console sign-in are recorded only
# in us-east-1 ("Understanding CloudTrail events" / "global service events", AWS CloudTrail User
# Guide): a deployment that leaves it out hears no IAM tampering and no root API call.
with_us_east_1() {
  local who="$1" region
  shift
  for region in "$@"; do
    if [ "$region" = us-east-1 ]; then
      echo "$*"
      return
    fi
  done
  echo "$who: adding us-east-1: IAM, root API calls and global STS are recorded only there" >&2
  echo "$* us-east-1"
}

# check_concurrency PROFILE_ARRAY REGION FUNCTION: stops before anything is created when reserving
# one concurrent execution for FUNCTION would take the account's unreserved concurrency below
# Lambda's minimum. "Lambda reserves 100 units of concurrency for functions that don't explicitly
# reserve concurrency" — or the whole quota when the account's is lower (new and Control Tower
# vended accounts often start at 10), and CloudFormation then rolls back with "decreases
# account's UnreservedConcurrentExecution below its minimum value" ("Configuring reserved
# concurrency for a function", AWS Lambda Developer Guide).
check_concurrency() {
  local -n as="$1"
  local region="$2" function="$3" limits quota unreserved current extra minimum
  if ! limits=$(aws "${as[@]}" lambda get-account-settings --region "$region" \
      --query '[AccountLimit.ConcurrentExecutions, AccountLimit.UnreservedConcurrentExecutions]' \
      --output text 2>target/deploy-preflight.log); then
    echo "deploy: cannot read the account's Lambda concurrency (lambda:GetAccountSettings in $region): $(head -c 300 target/deploy-preflight.log)" >&2
    exit 2
  fi
  read -r quota unreserved <<<"$limits"
  current=$(aws "${as[@]}" lambda get-function-concurrency --region "$region" --function-name "$function" \
    --query ReservedConcurrentExecutions --output text 2>/dev/null || true)
  [[ "$current" =~ ^[0-9]+$ ]] || current=0
  extra=$((1 - current))
  minimum=$((quota < 100 ? quota : 100))
  if [ $((unreserved - extra)) -lt "$minimum" ]; then
    cat >&2 <<EOF
deploy: stopped before creating anything. privwatch reserves 1 concurrent execution for its
function (exactly once rests on one invocation at a time), but this account's Lambda quota in
$region is $quota concurrent executions with $unreserved unreserved, and Lambda keeps at least
$minimum unreserved ("Configuring reserved concurrency for a function", AWS Lambda Developer
Guide): CloudFormation would roll back. Request more in Service Quotas → AWS Lambda →
"Concurrent executions" (quota code L-B99A9384), e.g. 1000, in $region, then deploy again:
  aws service-quotas request-service-quota-increase --region $region \\
    --service-code lambda --quota-code L-B99A9384 --desired-value 1000
EOF
    exit 2
  fi
  echo "==> Lambda concurrency in $region: quota $quota, $unreserved unreserved (privwatch reserves 1)"
}

# check_environment_size WHO NAME…: stops before anything is created when the settings that go
# into the function's environment (with room for what the stack adds: ARNs, names) pass Lambda's
# "4 KB, for all environment variables associated with the function, in aggregate" (Lambda
# quotas). Names the largest and the way out.
check_environment_size() {
  local who="$1" name total=700 largest="" largest_size=0 size
  shift
  for name in "$@"; do
    size=$(( ${#name} + $(printf %s "${!name:-}" | wc -c) ))
    total=$((total + size))
    if [ "$size" -gt "$largest_size" ]; then largest=$name largest_size=$size; fi
  done
  if [ "$total" -gt 4096 ]; then
    cat >&2 <<EOT
$who: stopped before creating anything: the function's environment would take about $total bytes;
Lambda allows 4 KB for all of a function's environment variables ("Lambda quotas"). The largest
setting is $largest ($largest_size bytes). Ways out: in organization mode leave ACCOUNT_NAMES
empty (the hub reads every account's name from Organizations); route CHANNEL_ROUTES by OU
(ou-…=C…) rather than account by account; give OIDC_OWNERS wildcard subjects (repo:my-org/*).
EOT
    exit 2
  fi
}

# check_admins PROFILE_ARRAY REGION WHERE: `privwatch admins` with the deploying credentials — the
# roles and IAM Identity Center permission sets that grant admin but that ADMIN_ROLE_ARNS,
# ADMIN_ROLE_PATTERNS and ADMIN_PERMISSION_SETS do not name (said, not a stop: the deploy is how
# the rest gets watched), and ADMIN_PERMISSION_SETS' names resolved to the ARNs the Identity Center
# assignment rule matches (exported as ADMIN_PERMISSION_SET_ARNS for synth.py). Identity Center is
# read in REGION (IDENTITY_CENTER_REGION): its home region.
check_admins() {
  local -n creds="$1"
  local region="$2" where="$3" bin=target/debug/privwatch
  cargo build -q --bin privwatch
  local run=(env AWS_REGION="$region" ADMIN_ROLE_ARNS="$ADMIN_ROLE_ARNS"
    ADMIN_ROLE_PATTERNS="$ADMIN_ROLE_PATTERNS" ADMIN_PERMISSION_SETS="${ADMIN_PERMISSION_SETS:-}")
  [ "${#creds[@]}" -eq 2 ] && run+=(AWS_PROFILE="${creds[1]}")
  echo "==> admin paths in $where (privwatch admins)"
  "${run[@]}" "$bin" admins || echo "    (a warning: a use of the paths above would go unexplained; the deploy goes on)"
  ADMIN_PERMISSION_SET_ARNS=$("${run[@]}" "$bin" admins --permission-set-arns) || ADMIN_PERMISSION_SET_ARNS=
  if [ -n "${ADMIN_PERMISSION_SETS:-}" ] && [ -z "$ADMIN_PERMISSION_SET_ARNS" ]; then
    echo "    (a warning: no permission set of ADMIN_PERMISSION_SETS was found in $region: their assignments are not watched; give their ARNs instead)"
  fi
  export ADMIN_PERMISSION_SET_ARNS
}
