#!/usr/bin/env bash
# make deploy-org|destroy-org ORG=<name>: privwatch for an AWS Organization, from
# infra/orgs/<name>.env (or ORG_FILE), on AWS's own multi-account machinery:
#   1. the hub (infra/notifier.yaml with OrganizationId: function, token secret, and an event
#      bus only the organization may put events on) in the hub account;
#   2. a service-managed StackSet with automatic deployment putting infra/spoke.yaml (the rules
#      and a heartbeat, targeting the hub bus directly) into every account of TARGET_OUS and
#      every region of REGIONS — plus one per OU with its own admin roles (OU_ADMIN_ROLE_PATTERNS);
#   3. the same spoke as plain stacks in the management account, where StackSets never deploy.
# Honours AWS_ENDPOINT_URL (then profiles are not used), so it runs against moto too.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:?usage: deploy-org.sh deploy|destroy ORG}"
org="${2:?usage: deploy-org.sh deploy|destroy ORG}"
file="${ORG_FILE:-infra/orgs/$org.env}"
[ -f "$file" ] || { echo "deploy-org: $file not found: copy infra/orgs/example.env and fill it in" >&2; exit 2; }

source scripts/prologue.sh
load_settings "$file" HUB_PROFILE MANAGEMENT_PROFILE MANAGEMENT_ACCOUNT_PROFILE CALL_AS HUB_REGION \
  ORGANIZATION_ID TARGET_OUS REGIONS SLACK_CHANNEL_ID CHANNEL_ROUTES ACCOUNT_NAMES ORG_READ_ROLE_ARN \
  ADMIN_ROLE_ARNS ADMIN_ROLE_PATTERNS OU_ADMIN_ROLE_PATTERNS HEARTBEAT_MINUTES MESSAGE_LANGUAGE \
  FALLBACK_MENTION ESCALATION_MENTION OIDC_OWNERS EXISTING_SECRET_ARN DEPLOY_ROLE_ARN ALARM_EMAIL \
  FUNCTION_NAME DEPLOY_BUCKET IAM_USER_SIGN_IN ADMIN_PERMISSION_SETS IDENTITY_CENTER_REGION SESSION_ACTIVITY
: "${FUNCTION_NAME:=privwatch}" "${CALL_AS:=SELF}" "${TARGET_OUS:=root}" "${CHANNEL_ROUTES:=}"
: "${ACCOUNT_NAMES:=}" "${ORG_READ_ROLE_ARN:=}" "${ADMIN_ROLE_ARNS:=}" "${ADMIN_ROLE_PATTERNS:=}"
: "${OU_ADMIN_ROLE_PATTERNS:=}" "${HEARTBEAT_MINUTES:=60}" "${MESSAGE_LANGUAGE:=en}"
: "${FALLBACK_MENTION:=<!here>}" "${ESCALATION_MENTION:=}" "${OIDC_OWNERS:=}" "${EXISTING_SECRET_ARN:=}"
: "${DEPLOY_ROLE_ARN:=}" "${ALARM_EMAIL:=}" "${DEPLOY_BUCKET:=}" "${ORGANIZATION_ID:=}"
: "${HUB_PROFILE:=}" "${MANAGEMENT_PROFILE:=}" "${MANAGEMENT_ACCOUNT_PROFILE:=}" "${IAM_USER_SIGN_IN:=off}"
: "${ADMIN_PERMISSION_SETS:=}" "${IDENTITY_CENTER_REGION:=$HUB_REGION}" "${SESSION_ACTIVITY:=on}"
case "$SESSION_ACTIVITY" in
  on|off) ;;
  *) echo "deploy-org: SESSION_ACTIVITY is '$SESSION_ACTIVITY': on (the default) or off" >&2; exit 2 ;;
esac
case "$IAM_USER_SIGN_IN" in
  off|notice) ;;
  *) echo "deploy-org: IAM_USER_SIGN_IN is '$IAM_USER_SIGN_IN': off (the default) or notice" >&2; exit 2 ;;
esac
for required in HUB_REGION REGIONS SLACK_CHANNEL_ID; do
  [ -n "${!required:-}" ] || { echo "deploy-org: $required is not set in $file" >&2; exit 2; }
done
case "$CALL_AS" in SELF|DELEGATED_ADMIN) ;; *) echo "deploy-org: CALL_AS must be SELF or DELEGATED_ADMIN" >&2; exit 2 ;; esac
if [ -z "$ADMIN_ROLE_ARNS$ADMIN_ROLE_PATTERNS" ]; then
  echo "deploy-org: set ADMIN_ROLE_ARNS and/or ADMIN_ROLE_PATTERNS in $file (which roles are admin roles)" >&2
  exit 2
fi
# Every region list covers us-east-1 (IAM and root API calls are recorded only there).
# shellcheck disable=SC2086
REGIONS=$(with_us_east_1 deploy-org $REGIONS)

check_environment_size deploy-org SLACK_CHANNEL_ID CHANNEL_ROUTES ACCOUNT_NAMES ORG_READ_ROLE_ARN \
  REGIONS MESSAGE_LANGUAGE FALLBACK_MENTION ESCALATION_MENTION OIDC_OWNERS DEPLOY_ROLE_ARN ORGANIZATION_ID
[ -n "${AWS_ENDPOINT_URL:-}" ] && echo "deploy-org: using the AWS endpoint $AWS_ENDPOINT_URL"
# hub: the hub account. mgmt: StackSet operations (the management account, or with
# CALL_AS=DELEGATED_ADMIN the StackSets delegated administrator). spokes_in_mgmt: the
# management account itself, for its plain spokes — with a delegated administrator, its own
# profile (MANAGEMENT_ACCOUNT_PROFILE), since the delegated administrator is a member account.
hub=() mgmt=() spokes_in_mgmt=()
profile_args hub "$HUB_PROFILE"
profile_args mgmt "$MANAGEMENT_PROFILE"
if [ -n "$MANAGEMENT_ACCOUNT_PROFILE" ]; then
  profile_args spokes_in_mgmt "$MANAGEMENT_ACCOUNT_PROFILE"
elif [ "$CALL_AS" = SELF ]; then
  spokes_in_mgmt=("${mgmt[@]}")
else
  echo "deploy-org: CALL_AS=DELEGATED_ADMIN: set MANAGEMENT_ACCOUNT_PROFILE to a profile of the organization's management account. Its spokes (where AssumeRoot and Organizations changes are recorded) can only be deployed with its own credentials; the delegated administrator is a member account that the StackSets already cover." >&2
  exit 2
fi
hub_stack="$FUNCTION_NAME-hub"
stack_set="$FUNCTION_NAME-spokes"
spoke_stack="$FUNCTION_NAME-spoke"

# Every OU's extra patterns, and all patterns together (the hub's rules must let them all in).
all_patterns="$ADMIN_ROLE_PATTERNS"
IFS=';' read -r -a ou_extras <<<"$OU_ADMIN_ROLE_PATTERNS"
for entry in "${ou_extras[@]}"; do
  [ -z "${entry// }" ] && continue
  case "$entry" in ou-*=*|r-*=*) ;; *) echo "deploy-org: OU_ADMIN_ROLE_PATTERNS entry '$entry' is not <ou id>=<pattern> …" >&2; exit 2 ;; esac
  all_patterns="$all_patterns ${entry#*=}"
done

# The name an OU's extra spokes give their rules: `<function>-<ou id>`, or, where that would take
# a rule name past EventBridge's 64 characters (OU IDs run to 68), `<function>-ou<8 hex>`.
ou_function_name() {
  local name="$FUNCTION_NAME-$1"
  if [ ${#name} -gt 34 ]; then
    name="$FUNCTION_NAME-ou$(printf %s "$1" | sha1sum | cut -c1-8)"
  fi
  echo "$name"
}

resolve_org() {
  if [ -z "$ORGANIZATION_ID" ]; then
    ORGANIZATION_ID=$(aws "${mgmt[@]}" organizations describe-organization --query Organization.Id --output text)
  fi
  local root
  root=$(aws "${mgmt[@]}" organizations list-roots --query 'Roots[0].Id' --output text)
  targets=()
  for ou in $TARGET_OUS; do
    [ "$ou" = root ] && ou="$root"
    targets+=("$ou")
  done
  # Service-managed StackSets need trusted access with Organizations ("Activate trusted access
  # for StackSets with AWS Organizations", AWS CloudFormation User Guide): without it the
  # StackSet cannot be created, after the hub already was.
  local access
  access=$(aws "${mgmt[@]}" cloudformation describe-organizations-access --call-as "$CALL_AS" \
    --region "$HUB_REGION" --query Status --output text 2>target/deploy-org-access.log || echo UNKNOWN)
  if [ "$access" != ENABLED ]; then
    echo "deploy-org: stopped before creating anything: StackSets' trusted access with AWS Organizations is $access ($(head -c 200 target/deploy-org-access.log)). From the management account run: aws cloudformation activate-organizations-access --region $HUB_REGION" >&2
    exit 2
  fi
  # The management account is the organization's, whoever calls: with a delegated administrator,
  # get-caller-identity would name a member account ("DescribeOrganization": "You can call this
  # operation from any account in a organization").
  management_account=$(aws "${mgmt[@]}" organizations describe-organization \
    --query Organization.MasterAccountId --output text)
  # Plain spokes go only where StackSets never deploy: the management account, with its own
  # credentials. Anything else would collide with a StackSet instance of the same names.
  local spoke_account
  spoke_account=$(aws "${spokes_in_mgmt[@]}" sts get-caller-identity --query Account --output text)
  if [ "$spoke_account" != "$management_account" ]; then
    local which=MANAGEMENT_PROFILE
    [ -n "$MANAGEMENT_ACCOUNT_PROFILE" ] && which=MANAGEMENT_ACCOUNT_PROFILE
    echo "deploy-org: stopped before creating anything: $which's credentials are of account $spoke_account, not of the organization's management account $management_account. The management account's spokes must be deployed with its own credentials (with CALL_AS=DELEGATED_ADMIN, set MANAGEMENT_ACCOUNT_PROFILE); a plain spoke in a member account would collide with its StackSet instance." >&2
    exit 2
  fi
}

# Waits for a StackSet operation (they run asynchronously in AWS).
wait_operation() { # stack-set operation-id
  local status unreadable=0
  for _ in $(seq 1 360); do
    if ! status=$(aws "${mgmt[@]}" cloudformation describe-stack-set-operation --stack-set-name "$1" \
        --operation-id "$2" --call-as "$CALL_AS" --region "$HUB_REGION" \
        --query StackSetOperation.Status --output text 2>target/deploy-org-operation.log); then
      # A failed look is not a finished operation: look again, a few times.
      unreadable=$((unreadable + 1))
      if [ "$unreadable" -ge 6 ]; then
        echo "deploy-org: cannot read StackSet operation $2 on $1: $(head -c 300 target/deploy-org-operation.log)" >&2
        return 1
      fi
      sleep 5
      continue
    fi
    case "$status" in
      SUCCEEDED) return 0 ;;
      FAILED|STOPPED) echo "deploy-org: StackSet operation $2 on $1 $status" >&2; return 1 ;;
    esac
    sleep 5
  done
  echo "deploy-org: StackSet operation $2 on $1 still running after 30 minutes" >&2
  return 1
}

# Creates or updates a service-managed StackSet with automatic deployment and puts its instances
# into every account of the given OUs × REGIONS.
stack_set() { # name template-file function-name heartbeat(true|false) ous…
  local name="$1" template="$2" function_name="$3" heartbeat="$4"
  shift 4
  local params=(
    "ParameterKey=FunctionName,ParameterValue=$function_name"
    "ParameterKey=HubBusArn,ParameterValue=$hub_bus_arn"
    "ParameterKey=HeartbeatMinutes,ParameterValue=$HEARTBEAT_MINUTES"
    "ParameterKey=SendHeartbeat,ParameterValue=$heartbeat"
    "ParameterKey=IamUserSignIn,ParameterValue=$IAM_USER_SIGN_IN"
    "ParameterKey=SessionActivity,ParameterValue=$SESSION_ACTIVITY"
  )
  local common=(--stack-set-name "$name" --call-as "$CALL_AS" --region "$HUB_REGION")
  local op
  if aws "${mgmt[@]}" cloudformation describe-stack-set "${common[@]}" >/dev/null 2>&1; then
    echo "==> updating the StackSet $name"
    op=$(aws "${mgmt[@]}" cloudformation update-stack-set "${common[@]}" \
      --template-body "file://$template" --capabilities CAPABILITY_IAM --parameters "${params[@]}" \
      --permission-model SERVICE_MANAGED --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false \
      --query OperationId --output text)
    wait_operation "$name" "$op"
  else
    echo "==> creating the StackSet $name (service-managed, automatic deployment)"
    aws "${mgmt[@]}" cloudformation create-stack-set "${common[@]}" \
      --template-body "file://$template" --capabilities CAPABILITY_IAM --parameters "${params[@]}" \
      --permission-model SERVICE_MANAGED --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false \
      --description "privwatch spokes: rules and a heartbeat to the hub bus $hub_bus_arn" >/dev/null
  fi
  echo "==> instances of $name in OUs $* × regions $REGIONS"
  # shellcheck disable=SC2086
  if op=$(aws "${mgmt[@]}" cloudformation create-stack-instances "${common[@]}" \
      --deployment-targets "OrganizationalUnitIds=$(IFS=,; echo "$*")" --regions $REGIONS \
      --operation-preferences FailureTolerancePercentage=10,MaxConcurrentPercentage=50,RegionConcurrencyType=PARALLEL \
      --query OperationId --output text 2>target/deploy-org-instances.log); then
    wait_operation "$name" "$op"
  else
    echo "    (instances already there: the update above reached them) $(head -c 300 target/deploy-org-instances.log)"
  fi
}

deploy() {
  local zip=target/lambda/arm64/privwatch/bootstrap.zip
  [ -f "$zip" ] || { echo "deploy-org: $zip is missing: run make zip (make deploy-org does)" >&2; exit 2; }
  resolve_org
  check_concurrency hub "$HUB_REGION" "$FUNCTION_NAME"
  local hub_account bucket
  hub_account=$(aws "${hub[@]}" sts get-caller-identity --query Account --output text)
  hub_bus_arn="arn:aws:events:$HUB_REGION:$hub_account:event-bus/$FUNCTION_NAME-hub"
  bucket="${DEPLOY_BUCKET:-$FUNCTION_NAME-deploy-$hub_account-$HUB_REGION}"

  # IAM Identity Center is administered from the management account (or its delegated
  # administrator: give ARNs in ADMIN_PERMISSION_SETS then).
  check_admins spokes_in_mgmt "$IDENTITY_CENTER_REGION" "the management account"
  echo "==> rendering the templates for $org (target/infra/org-$org/)"
  local out="target/infra/org-$org"
  export EXISTING_SECRET_ARN DEPLOY_ROLE_ARN FUNCTION_NAME
  python3 scripts/synth.py infra/notifier.yaml "$out/hub.yaml" "$ADMIN_ROLE_ARNS" "$all_patterns"
  # (Spokes go to CloudFormation inline: a StackSet's template body, the management spokes.)
  python3 scripts/synth.py infra/spoke.yaml "$out/spoke.yaml" "$ADMIN_ROLE_ARNS" "$ADMIN_ROLE_PATTERNS" --inline
  # Every OU's own spoke too, before anything is created: a limit found here stops the deploy
  # while nothing is half made.
  local entry
  for entry in "${ou_extras[@]}"; do
    [ -z "${entry// }" ] && continue
    FUNCTION_NAME="$(ou_function_name "${entry%%=*}")" python3 scripts/synth.py infra/spoke.yaml \
      "$out/spoke-${entry%%=*}.yaml" "" "${entry#*=}" --admin-roles-only --inline
  done

  ensure_bucket hub "$bucket" "$HUB_REGION"
  echo "==> uploading the function ($zip)"
  aws "${hub[@]}" cloudformation package --region "$HUB_REGION" --template-file "$out/hub.yaml" \
    --s3-bucket "$bucket" --s3-prefix "$FUNCTION_NAME" --output-template-file "$out/hub.packaged.yaml" >/dev/null

  local role_args=()
  [ -n "$DEPLOY_ROLE_ARN" ] && role_args=(--role-arn "$DEPLOY_ROLE_ARN")
  echo "==> deploying the hub $hub_stack in $HUB_REGION (organization $ORGANIZATION_ID)"
  aws "${hub[@]}" cloudformation deploy --region "$HUB_REGION" --stack-name "$hub_stack" \
    --template-file "$out/hub.packaged.yaml" "${role_args[@]}" \
    --s3-bucket "$bucket" --s3-prefix "$FUNCTION_NAME/templates" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides \
      "FunctionName=$FUNCTION_NAME" \
      "SlackChannelId=$SLACK_CHANNEL_ID" \
      "MessageLanguage=$MESSAGE_LANGUAGE" \
      "FallbackMention=$FALLBACK_MENTION" \
      "EscalationMention=$ESCALATION_MENTION" \
      "ExistingSecretArn=$EXISTING_SECRET_ARN" \
      "OidcOwners=$OIDC_OWNERS" \
      "DeployRoleArn=$DEPLOY_ROLE_ARN" \
      "AlarmEmail=$ALARM_EMAIL" \
      "OrganizationId=$ORGANIZATION_ID" \
      "SpokeRegions=$(tr ' ' ',' <<<"$REGIONS")" \
      "HeartbeatMinutes=$HEARTBEAT_MINUTES" \
      "ChannelRoutes=$CHANNEL_ROUTES" \
      "AccountNames=$ACCOUNT_NAMES" \
      "OrgReadRoleArn=$ORG_READ_ROLE_ARN" \
      "IamUserSignIn=$IAM_USER_SIGN_IN" \
      "SessionActivity=$SESSION_ACTIVITY" \
      "AdminPermissionSetArns=$(echo $ADMIN_PERMISSION_SET_ARNS | tr ' ' ',')"
  # (A bus policy set by the template is what AWS applies; moto drops it, so the emulator gets
  # the same statement through the API.)
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    aws "${hub[@]}" events put-permission --region "$HUB_REGION" --event-bus-name "$FUNCTION_NAME-hub" \
      --action events:PutEvents --principal '*' --statement-id privwatch-organization \
      --condition "Type=StringEquals,Key=aws:PrincipalOrgID,Value=$ORGANIZATION_ID"
  fi

  stack_set "$stack_set" "$out/spoke.yaml" "$FUNCTION_NAME" true "${targets[@]}"
  for entry in "${ou_extras[@]}"; do
    [ -z "${entry// }" ] && continue
    local ou="${entry%%=*}"
    stack_set "$FUNCTION_NAME-spokes-$ou" "$out/spoke-$ou.yaml" "$(ou_function_name "$ou")" false "$ou"
  done

  for region in $REGIONS; do
    echo "==> deploying $spoke_stack in the management account $management_account, $region"
    aws "${spokes_in_mgmt[@]}" cloudformation deploy --region "$region" --stack-name "$spoke_stack" \
      --template-file "$out/spoke.yaml" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
      --parameter-overrides "FunctionName=$FUNCTION_NAME" "HubBusArn=$hub_bus_arn" \
        "HeartbeatMinutes=$HEARTBEAT_MINUTES" "SendHeartbeat=true" "IamUserSignIn=$IAM_USER_SIGN_IN" \
        "SessionActivity=$SESSION_ACTIVITY"
  done

  local secret="${EXISTING_SECRET_ARN:-$FUNCTION_NAME/slack-bot-token}"
  cat <<EOF

privwatch's hub is deployed in account $hub_account ($HUB_REGION), fed by every account of
$TARGET_OUS in $REGIONS (StackSet $stack_set, automatic deployment) and by the management
account. Next:
  1. Put the bot token in the secret (never in a file or a parameter):
       aws secretsmanager put-secret-value --region $HUB_REGION --secret-id '$secret' \\
         --secret-string '{"bot_token":"xoxb-…"}'
  2. Invite the bot to $SLACK_CHANNEL_ID${CHANNEL_ROUTES:+ and to every channel of CHANNEL_ROUTES}.
  3. Within $HEARTBEAT_MINUTES minutes every spoke's heartbeat fills the pinned coverage message;
     \`privwatch coverage\` prints it in a terminal.
EOF
}

destroy() {
  resolve_org
  local name op
  # (The management account's spokes first: moto, unlike AWS, also puts StackSet instances into
  # the management account, and the two would share a queue there.)
  for region in $REGIONS; do
    aws "${spokes_in_mgmt[@]}" cloudformation delete-stack --region "$region" --stack-name "$spoke_stack"
    aws "${spokes_in_mgmt[@]}" cloudformation wait stack-delete-complete --region "$region" --stack-name "$spoke_stack"
  done

  for name in "$stack_set" $(for entry in "${ou_extras[@]}"; do [ -n "${entry// }" ] && echo "$FUNCTION_NAME-spokes-${entry%%=*}"; done); do
    echo "==> removing the StackSet $name"
    local where=(--deployment-targets "OrganizationalUnitIds=$(IFS=,; echo "${targets[*]}")")
    if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
      # moto ignores DeploymentTargets when deleting instances: name their accounts instead.
      where=(--accounts $(aws "${mgmt[@]}" cloudformation list-stack-instances --stack-set-name "$name" --region "$HUB_REGION" \
        --query 'Summaries[].Account' --output text | tr '\t' '\n' | sort -u))
    fi
    # shellcheck disable=SC2086
    if op=$(aws "${mgmt[@]}" cloudformation delete-stack-instances --stack-set-name "$name" --call-as "$CALL_AS" \
        --region "$HUB_REGION" "${where[@]}" --regions $REGIONS --no-retain-stacks --query OperationId --output text); then
      wait_operation "$name" "$op"
    fi
    aws "${mgmt[@]}" cloudformation delete-stack-set --stack-set-name "$name" --call-as "$CALL_AS" --region "$HUB_REGION"
  done
  echo "==> deleting the hub $hub_stack"
  aws "${hub[@]}" cloudformation delete-stack --region "$HUB_REGION" --stack-name "$hub_stack"
  aws "${hub[@]}" cloudformation wait stack-delete-complete --region "$HUB_REGION" --stack-name "$hub_stack"
  echo "privwatch's organization deployment is removed (the deploy bucket and a retained secret are left)."
}

case "$action" in
  deploy) deploy ;;
  destroy) destroy ;;
  *) echo "usage: deploy-org.sh deploy|destroy ORG" >&2; exit 2 ;;
esac
