#!/usr/bin/env bash
# make deploy|destroy|redrive ACCOUNT=<name>: privwatch in one AWS account, from
# infra/accounts/<name>.env (or ACCOUNT_FILE). Honours AWS_ENDPOINT_URL, so the whole thing runs
# against a local emulator too.
set -euo pipefail
cd "$(dirname "$0")/.."

action="${1:?usage: deploy.sh deploy|destroy|redrive ACCOUNT}"
account="${2:?usage: deploy.sh deploy|destroy|redrive ACCOUNT}"
file="${ACCOUNT_FILE:-infra/accounts/$account.env}"
[ -f "$file" ] || { echo "deploy: $file not found: copy infra/accounts/example.env and fill it in" >&2; exit 2; }

# Settings: the file as the user wrote it (scripts/settings.py; nothing inherited from the
# caller's environment, nothing run as shell code); defaults for what is optional.
source scripts/prologue.sh
unset AWS_PROFILE
load_settings "$file" AWS_PROFILE HOME_REGION FORWARDER_REGIONS SLACK_CHANNEL_ID ACCOUNT_NAME \
  ADMIN_ROLE_ARNS ADMIN_ROLE_PATTERNS WATCH_ROOT_API_ACTIVITY WATCH_ADMIN_ASSUME_ROLE EXISTING_SECRET_ARN \
  SECRET_KMS_KEY_ARN MESSAGE_LANGUAGE FALLBACK_MENTION ALARM_EMAIL DEPLOY_BUCKET FUNCTION_NAME \
  COALESCE_MINUTES ESCALATE_AFTER_MINUTES ESCALATION_MENTION DEPLOY_ROLE_ARN OIDC_OWNERS ENABLE_ARCHIVE \
  ARCHIVE_OBJECT_LOCK_DAYS TICKET_URL_PATTERN ENABLE_JUSTIFY_BUTTON JUSTIFY_USERGROUP IAM_USER_SIGN_IN \
  ADMIN_PERMISSION_SETS IDENTITY_CENTER_REGION SESSION_ACTIVITY
: "${FUNCTION_NAME:=privwatch}" "${FORWARDER_REGIONS:=}" "${ACCOUNT_NAME:=}" "${MESSAGE_LANGUAGE:=en}"
: "${FALLBACK_MENTION:=<!here>}" "${EXISTING_SECRET_ARN:=}" "${SECRET_KMS_KEY_ARN:=}" "${ALARM_EMAIL:=}"
: "${ADMIN_ROLE_ARNS:=}" "${ADMIN_ROLE_PATTERNS:=}" "${WATCH_ROOT_API_ACTIVITY:=true}"
: "${WATCH_ADMIN_ASSUME_ROLE:=true}" "${DEPLOY_BUCKET:=}" "${AWS_PROFILE:=}"
: "${COALESCE_MINUTES:=15}" "${ESCALATE_AFTER_MINUTES:=30}" "${ESCALATION_MENTION:=}"
: "${DEPLOY_ROLE_ARN:=}" "${OIDC_OWNERS:=}" "${ENABLE_ARCHIVE:=false}" "${ARCHIVE_OBJECT_LOCK_DAYS:=0}"
: "${TICKET_URL_PATTERN:=}" "${ENABLE_JUSTIFY_BUTTON:=false}" "${JUSTIFY_USERGROUP:=}"
: "${IAM_USER_SIGN_IN:=off}" "${ADMIN_PERMISSION_SETS:=}" "${IDENTITY_CENTER_REGION:=$HOME_REGION}"
: "${SESSION_ACTIVITY:=on}"
case "$SESSION_ACTIVITY" in
  on|off) ;;
  *) echo "deploy: SESSION_ACTIVITY is '$SESSION_ACTIVITY': on (the default) or off" >&2; exit 2 ;;
esac
case "$IAM_USER_SIGN_IN" in
  off|notice) ;;
  *) echo "deploy: IAM_USER_SIGN_IN is '$IAM_USER_SIGN_IN': off (the default) or notice" >&2; exit 2 ;;
esac
for required in HOME_REGION SLACK_CHANNEL_ID; do
  if [ -z "${!required:-}" ]; then
    echo "deploy: $required is not set in $file" >&2
    exit 2
  fi
done
if [ -z "$ADMIN_ROLE_ARNS$ADMIN_ROLE_PATTERNS" ]; then
  echo "deploy: set ADMIN_ROLE_ARNS and/or ADMIN_ROLE_PATTERNS in $file (which roles are admin roles)" >&2
  exit 2
fi
if [ "$ENABLE_ARCHIVE" != true ] && [ "$ARCHIVE_OBJECT_LOCK_DAYS" != 0 ]; then
  echo "deploy: ARCHIVE_OBJECT_LOCK_DAYS=$ARCHIVE_OBJECT_LOCK_DAYS needs ENABLE_ARCHIVE=true (the lock is the archive's)" >&2
  exit 2
fi
check_environment_size deploy SLACK_CHANNEL_ID ACCOUNT_NAME MESSAGE_LANGUAGE FALLBACK_MENTION \
  ESCALATION_MENTION DEPLOY_ROLE_ARN OIDC_OWNERS TICKET_URL_PATTERN JUSTIFY_USERGROUP
[ -n "${AWS_ENDPOINT_URL:-}" ] && echo "deploy: using the AWS endpoint $AWS_ENDPOINT_URL"
as_account=()
profile_args as_account "$AWS_PROFILE"
# The home region and the forwarders together always cover us-east-1.
if [ "$HOME_REGION" != us-east-1 ]; then
  # shellcheck disable=SC2086
  FORWARDER_REGIONS=$(with_us_east_1 deploy $FORWARDER_REGIONS)
fi

notifier_stack="$FUNCTION_NAME-notifier"
forwarder_stack="$FUNCTION_NAME-forwarder"

deploy() {
  local zip=target/lambda/arm64/privwatch/bootstrap.zip
  [ -f "$zip" ] || { echo "deploy: $zip is missing: run make zip (make deploy does)" >&2; exit 2; }
  local account_id bucket
  check_concurrency as_account "$HOME_REGION" "$FUNCTION_NAME"
  account_id=$(aws "${as_account[@]}" sts get-caller-identity --query Account --output text --region "$HOME_REGION")
  bucket="${DEPLOY_BUCKET:-$FUNCTION_NAME-deploy-$account_id-$HOME_REGION}"

  check_admins as_account "$IDENTITY_CENTER_REGION" "$account"
  echo "==> rendering the templates for $account (target/infra/)"
  export EXISTING_SECRET_ARN DEPLOY_ROLE_ARN FUNCTION_NAME
  python3 scripts/synth.py infra/notifier.yaml target/infra/notifier.yaml "$ADMIN_ROLE_ARNS" "$ADMIN_ROLE_PATTERNS"
  python3 scripts/synth.py infra/forwarder.yaml target/infra/forwarder.yaml "$ADMIN_ROLE_ARNS" "$ADMIN_ROLE_PATTERNS" --inline

  ensure_bucket as_account "$bucket" "$HOME_REGION"
  echo "==> uploading the function ($zip)"
  aws "${as_account[@]}" cloudformation package --region "$HOME_REGION" --template-file target/infra/notifier.yaml \
    --s3-bucket "$bucket" --s3-prefix "$FUNCTION_NAME" \
    --output-template-file target/infra/notifier.packaged.yaml >/dev/null

  # Deploying with DEPLOY_ROLE_ARN makes privwatch's own changes recognisable (not tampering).
  local role_args=()
  [ -n "$DEPLOY_ROLE_ARN" ] && role_args=(--role-arn "$DEPLOY_ROLE_ARN")

  # The Justify URL before this deploy (the notifier's own, before the Justify function had it).
  local old_url=""
  if [ "$ENABLE_JUSTIFY_BUTTON" = true ]; then
    for name in "$FUNCTION_NAME-justify" "$FUNCTION_NAME"; do
      old_url=$(aws "${as_account[@]}" lambda get-function-url-config --region "$HOME_REGION" \
        --function-name "$name" --query FunctionUrl --output text 2>/dev/null || true)
      [ -n "$old_url" ] && [ "$old_url" != None ] && break
      old_url=""
    done
  fi

  echo "==> deploying $notifier_stack in $HOME_REGION"
  # Templates go through the deploy bucket: inline, CloudFormation takes 51,200 bytes at most
  # ("CloudFormation quotas", AWS CloudFormation User Guide).
  aws "${as_account[@]}" cloudformation deploy --region "$HOME_REGION" --stack-name "$notifier_stack" \
    --template-file target/infra/notifier.packaged.yaml "${role_args[@]}" \
    --s3-bucket "$bucket" --s3-prefix "$FUNCTION_NAME/templates" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides \
      "FunctionName=$FUNCTION_NAME" \
      "SlackChannelId=$SLACK_CHANNEL_ID" \
      "AccountName=$ACCOUNT_NAME" \
      "MessageLanguage=$MESSAGE_LANGUAGE" \
      "FallbackMention=$FALLBACK_MENTION" \
      "ExistingSecretArn=$EXISTING_SECRET_ARN" \
      "SecretKmsKeyArn=$SECRET_KMS_KEY_ARN" \
      "WatchRootApiActivity=$WATCH_ROOT_API_ACTIVITY" \
      "WatchAdminAssumeRole=$WATCH_ADMIN_ASSUME_ROLE" \
      "IamUserSignIn=$IAM_USER_SIGN_IN" \
      "SessionActivity=$SESSION_ACTIVITY" \
      "AdminPermissionSetArns=$(echo $ADMIN_PERMISSION_SET_ARNS | tr ' ' ',')" \
      "CoalesceMinutes=$COALESCE_MINUTES" \
      "EscalateAfterMinutes=$ESCALATE_AFTER_MINUTES" \
      "EscalationMention=$ESCALATION_MENTION" \
      "DeployRoleArn=$DEPLOY_ROLE_ARN" \
      "OidcOwners=$OIDC_OWNERS" \
      "EnableArchive=$ENABLE_ARCHIVE" \
      "ArchiveObjectLockDays=$ARCHIVE_OBJECT_LOCK_DAYS" \
      "TicketUrlPattern=$TICKET_URL_PATTERN" \
      "EnableJustifyButton=$ENABLE_JUSTIFY_BUTTON" \
      "JustifyUsergroup=$JUSTIFY_USERGROUP" \
      "AlarmEmail=$ALARM_EMAIL"

  for region in $FORWARDER_REGIONS; do
    [ "$region" = "$HOME_REGION" ] && continue
    echo "==> deploying $forwarder_stack in $region (forwards to $HOME_REGION)"
    # Inline (synth.py --inline holds it under 51,200 bytes): the deploy bucket is in the home
    # region, and the AWS CLI addresses a template in S3 through the stack's region.
    aws "${as_account[@]}" cloudformation deploy --region "$region" --stack-name "$forwarder_stack" \
      --template-file target/infra/forwarder.yaml "${role_args[@]}" \
      --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
      --parameter-overrides \
        "FunctionName=$FUNCTION_NAME" \
        "HomeRegion=$HOME_REGION" \
        "WatchRootApiActivity=$WATCH_ROOT_API_ACTIVITY" \
        "WatchAdminAssumeRole=$WATCH_ADMIN_ASSUME_ROLE" \
        "IamUserSignIn=$IAM_USER_SIGN_IN" "SessionActivity=$SESSION_ACTIVITY"
  done

  local secret="${EXISTING_SECRET_ARN:-$FUNCTION_NAME/slack-bot-token}"
  cat <<EOF

privwatch is deployed in $HOME_REGION${FORWARDER_REGIONS:+ (forwarders: $FORWARDER_REGIONS)}. Next:
  1. Put the bot token in the secret (never in a file or a parameter):
       aws secretsmanager put-secret-value --region $HOME_REGION --secret-id '$secret' \\
         --secret-string '{"bot_token":"xoxb-…"}'
  2. Invite the bot to the channel: /invite @privwatch in $SLACK_CHANNEL_ID
  3. Sign in as root (or assume an admin role) and watch the channel.
EOF
  if [ "$ENABLE_JUSTIFY_BUTTON" = true ]; then
    local url
    url=$(aws "${as_account[@]}" lambda get-function-url-config --region "$HOME_REGION" \
      --function-name "$FUNCTION_NAME-justify" --query FunctionUrl --output text 2>/dev/null || true)
    [ -n "$url" ] && [ "$url" != None ] || url="the JustifyUrl output of the stack $notifier_stack"
    if [ -n "$old_url" ] && [ "$old_url" != "$url" ]; then
      echo "  NOTE: the Justify URL changed (it was $old_url): until the Slack app's Request URL is"
      echo "        updated, the button answers with an error."
    fi
    printf '%s\n' \
      "  4. The Justify button: put the app's signing secret beside the token" \
      "     ('{\"bot_token\":\"xoxb-…\",\"signing_secret\":\"…\"}') and set the app's interactivity" \
      "     Request URL (slack/manifest.yaml, settings.interactivity) to:" \
      "       $url"
  fi
}

destroy() {
  for region in $FORWARDER_REGIONS; do
    [ "$region" = "$HOME_REGION" ] && continue
    echo "==> deleting $forwarder_stack in $region"
    aws "${as_account[@]}" cloudformation delete-stack --region "$region" --stack-name "$forwarder_stack"
    aws "${as_account[@]}" cloudformation wait stack-delete-complete --region "$region" --stack-name "$forwarder_stack"
  done
  echo "==> deleting $notifier_stack in $HOME_REGION"
  aws "${as_account[@]}" cloudformation delete-stack --region "$HOME_REGION" --stack-name "$notifier_stack"
  aws "${as_account[@]}" cloudformation wait stack-delete-complete --region "$HOME_REGION" --stack-name "$notifier_stack"
  echo "privwatch is removed. The deploy bucket and a retained secret, if any, are left for you to delete."
}

# One synchronous invocation of the function with PAYLOAD; true when it succeeded. A throttled
# invocation (the function runs one at a time, and may be busy with the very events being
# drained) is tried again for up to two minutes. AWS CLI v2 reads --payload as base64 unless told
# otherwise ("--cli-binary-format", AWS CLI v2 migration guide); v1 takes it raw.
invoke_once() {
  local payload="$1" try
  for try in $(seq 1 40); do
    if aws "${as_account[@]}" lambda invoke --region "$HOME_REGION" --function-name "$FUNCTION_NAME" \
        "${cli_binary_format[@]}" --payload "$payload" --query FunctionError --output text target/redrive-response.json \
        >target/redrive-result.txt 2>target/redrive-error.log; then
      grep -qx None target/redrive-result.txt
      return
    fi
    grep -q 'TooManyRequestsException\|Rate Exceeded' target/redrive-error.log || return 1
    sleep 3
  done
  return 1
}

# Re-invokes the function with every event waiting in the failure queue (on-failure destination
# records: the event is `requestPayload`) and the rule dead-letter queue (the event itself);
# deletes only the messages whose invocation succeeded.
redrive() {
  local queue url body payload receipt ok=0 failed=0
  cli_binary_format=()
  aws --version 2>&1 | grep -q '^aws-cli/2' && cli_binary_format=(--cli-binary-format raw-in-base64-out)
  # (AWS CLI v1 sends SQS calls for us-east-1 to queue.amazonaws.com whatever AWS_ENDPOINT_URL
  # says: an emulator is named explicitly.)
  local sqs=(aws "${as_account[@]}" sqs)
  [ -n "${AWS_ENDPOINT_URL:-}" ] && sqs+=(--endpoint-url "$AWS_ENDPOINT_URL")
  for queue in "$FUNCTION_NAME-failures" "$FUNCTION_NAME-rule-dlq"; do
    url=$("${sqs[@]}" get-queue-url --region "$HOME_REGION" --queue-name "$queue" --query QueueUrl --output text)
    echo "==> redriving $queue"
    while :; do
      local batch
      batch=$("${sqs[@]}" receive-message --region "$HOME_REGION" --queue-url "$url" \
        --max-number-of-messages 10 --visibility-timeout 120 --wait-time-seconds 1 --output json)
      [ -z "$batch" ] && break
      local count
      count=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("Messages", [])))' <<<"$batch")
      [ "$count" = 0 ] && break
      for i in $(seq 0 $((count - 1))); do
        body=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Messages"][int(sys.argv[1])]["Body"])' "$i" <<<"$batch")
        receipt=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Messages"][int(sys.argv[1])]["ReceiptHandle"])' "$i" <<<"$batch")
        payload=$(python3 -c 'import json,sys; b=json.loads(sys.stdin.read()); print(json.dumps(b.get("requestPayload", b)))' <<<"$body")
        if invoke_once "$payload"; then
          "${sqs[@]}" delete-message --region "$HOME_REGION" --queue-url "$url" --receipt-handle "$receipt"
          ok=$((ok + 1))
        else
          echo "  kept one event: the invocation failed ($(head -c 300 target/redrive-error.log target/redrive-response.json 2>/dev/null | tr '\n' ' '))"
          failed=$((failed + 1))
        fi
      done
    done
  done
  echo "redrive: $ok delivered and deleted, $failed kept in the queues"
  [ "$failed" = 0 ]
}

case "$action" in
  deploy) deploy ;;
  destroy) destroy ;;
  redrive) redrive ;;
  *) echo "usage: deploy.sh deploy|destroy|redrive ACCOUNT" >&2; exit 2 ;;
esac
