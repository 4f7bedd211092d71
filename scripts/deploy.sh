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

# Settings: the file, read as bash (nothing inherited from the caller's environment); defaults
# for what is optional.
unset AWS_PROFILE HOME_REGION FORWARDER_REGIONS SLACK_CHANNEL_ID ACCOUNT_NAME ADMIN_ROLE_ARNS \
  ADMIN_ROLE_PATTERNS WATCH_ROOT_API_ACTIVITY WATCH_ADMIN_ASSUME_ROLE EXISTING_SECRET_ARN \
  SECRET_KMS_KEY_ARN MESSAGE_LANGUAGE FALLBACK_MENTION ALARM_EMAIL DEPLOY_BUCKET \
  FUNCTION_NAME COALESCE_MINUTES ESCALATE_AFTER_MINUTES ESCALATION_MENTION DEPLOY_ROLE_ARN OIDC_OWNERS \
  ENABLE_ARCHIVE ARCHIVE_OBJECT_LOCK_DAYS TICKET_URL_PATTERN ENABLE_JUSTIFY_BUTTON JUSTIFY_USERGROUP
# shellcheck disable=SC1090
source "$file"
: "${FUNCTION_NAME:=privwatch}" "${FORWARDER_REGIONS:=}" "${ACCOUNT_NAME:=}" "${MESSAGE_LANGUAGE:=en}"
: "${FALLBACK_MENTION:=<!here>}" "${EXISTING_SECRET_ARN:=}" "${SECRET_KMS_KEY_ARN:=}" "${ALARM_EMAIL:=}"
: "${ADMIN_ROLE_ARNS:=}" "${ADMIN_ROLE_PATTERNS:=}" "${WATCH_ROOT_API_ACTIVITY:=true}"
: "${WATCH_ADMIN_ASSUME_ROLE:=true}" "${DEPLOY_BUCKET:=}"
: "${COALESCE_MINUTES:=15}" "${ESCALATE_AFTER_MINUTES:=30}" "${ESCALATION_MENTION:=}"
: "${DEPLOY_ROLE_ARN:=}" "${OIDC_OWNERS:=}" "${ENABLE_ARCHIVE:=false}" "${ARCHIVE_OBJECT_LOCK_DAYS:=0}"
: "${TICKET_URL_PATTERN:=}" "${ENABLE_JUSTIFY_BUTTON:=false}" "${JUSTIFY_USERGROUP:=}"
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

# Against an emulator (AWS_ENDPOINT_URL) the profile is not used.
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  unset AWS_PROFILE
  echo "deploy: using the AWS endpoint $AWS_ENDPOINT_URL"
elif [ -n "${AWS_PROFILE:-}" ]; then
  export AWS_PROFILE
fi

notifier_stack="$FUNCTION_NAME-notifier"
forwarder_stack="$FUNCTION_NAME-forwarder"

deploy() {
  local zip=target/lambda/arm64/privwatch/bootstrap.zip
  [ -f "$zip" ] || { echo "deploy: $zip is missing: run make zip (make deploy does)" >&2; exit 2; }
  local account_id bucket
  account_id=$(aws sts get-caller-identity --query Account --output text --region "$HOME_REGION")
  bucket="${DEPLOY_BUCKET:-$FUNCTION_NAME-deploy-$account_id-$HOME_REGION}"
  if ! aws s3api head-bucket --bucket "$bucket" --region "$HOME_REGION" >/dev/null 2>&1; then
    echo "==> creating the deploy bucket s3://$bucket"
    if [ "$HOME_REGION" = us-east-1 ]; then
      aws s3api create-bucket --bucket "$bucket" --region "$HOME_REGION" >/dev/null
    else
      aws s3api create-bucket --bucket "$bucket" --region "$HOME_REGION" \
        --create-bucket-configuration "LocationConstraint=$HOME_REGION" >/dev/null
    fi
  fi

  echo "==> rendering the templates for $account (target/infra/)"
  export EXISTING_SECRET_ARN DEPLOY_ROLE_ARN
  python3 scripts/synth.py infra/notifier.yaml target/infra/notifier.yaml "$ADMIN_ROLE_ARNS" "$ADMIN_ROLE_PATTERNS"
  python3 scripts/synth.py infra/forwarder.yaml target/infra/forwarder.yaml "$ADMIN_ROLE_ARNS" "$ADMIN_ROLE_PATTERNS"

  echo "==> uploading the function ($zip)"
  aws cloudformation package --region "$HOME_REGION" --template-file target/infra/notifier.yaml \
    --s3-bucket "$bucket" --s3-prefix "$FUNCTION_NAME" \
    --output-template-file target/infra/notifier.packaged.yaml >/dev/null

  # Deploying with DEPLOY_ROLE_ARN makes privwatch's own changes recognisable (not tampering).
  local role_args=()
  [ -n "$DEPLOY_ROLE_ARN" ] && role_args=(--role-arn "$DEPLOY_ROLE_ARN")

  echo "==> deploying $notifier_stack in $HOME_REGION"
  aws cloudformation deploy --region "$HOME_REGION" --stack-name "$notifier_stack" \
    --template-file target/infra/notifier.packaged.yaml "${role_args[@]}" \
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
    aws cloudformation deploy --region "$region" --stack-name "$forwarder_stack" \
      --template-file target/infra/forwarder.yaml "${role_args[@]}" \
      --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
      --parameter-overrides \
        "FunctionName=$FUNCTION_NAME" \
        "HomeRegion=$HOME_REGION" \
          "WatchRootApiActivity=$WATCH_ROOT_API_ACTIVITY" \
        "WatchAdminAssumeRole=$WATCH_ADMIN_ASSUME_ROLE"
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
    url=$(aws cloudformation describe-stacks --region "$HOME_REGION" --stack-name "$notifier_stack" \
      --query "Stacks[0].Outputs[?OutputKey=='JustifyUrl'].OutputValue" --output text 2>/dev/null || true)
    cat <<EOF
  4. The Justify button: put the app's signing secret beside the token
     ('{"bot_token":"xoxb-…","signing_secret":"…"}') and set the app's interactivity
     Request URL (slack/manifest.yaml, settings.interactivity) to ${url:-the stack's JustifyUrl output}.
EOF
  fi
}

destroy() {
  for region in $FORWARDER_REGIONS; do
    [ "$region" = "$HOME_REGION" ] && continue
    echo "==> deleting $forwarder_stack in $region"
    aws cloudformation delete-stack --region "$region" --stack-name "$forwarder_stack"
    aws cloudformation wait stack-delete-complete --region "$region" --stack-name "$forwarder_stack"
  done
  echo "==> deleting $notifier_stack in $HOME_REGION"
  aws cloudformation delete-stack --region "$HOME_REGION" --stack-name "$notifier_stack"
  aws cloudformation wait stack-delete-complete --region "$HOME_REGION" --stack-name "$notifier_stack"
  echo "privwatch is removed. The deploy bucket and a retained secret, if any, are left for you to delete."
}

# Re-invokes the function with every event waiting in the failure queue (on-failure destination
# records: the event is `requestPayload`) and the rule dead-letter queue (the event itself);
# deletes only the messages whose invocation succeeded.
redrive() {
  local queue url body payload receipt ok=0 failed=0
  for queue in "$FUNCTION_NAME-failures" "$FUNCTION_NAME-rule-dlq"; do
    url=$(aws sqs get-queue-url --region "$HOME_REGION" --queue-name "$queue" --query QueueUrl --output text)
    echo "==> redriving $queue"
    while :; do
      local batch
      batch=$(aws sqs receive-message --region "$HOME_REGION" --queue-url "$url" \
        --max-number-of-messages 10 --visibility-timeout 120 --wait-time-seconds 1 --output json)
      [ -z "$batch" ] && break
      local count
      count=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("Messages", [])))' <<<"$batch")
      [ "$count" = 0 ] && break
      for i in $(seq 0 $((count - 1))); do
        body=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Messages"][int(sys.argv[1])]["Body"])' "$i" <<<"$batch")
        receipt=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Messages"][int(sys.argv[1])]["ReceiptHandle"])' "$i" <<<"$batch")
        payload=$(python3 -c 'import json,sys; b=json.loads(sys.stdin.read()); print(json.dumps(b.get("requestPayload", b)))' <<<"$body")
        if aws lambda invoke --region "$HOME_REGION" --function-name "$FUNCTION_NAME" \
             --payload "$payload" --query FunctionError --output text target/redrive-response.json \
             2>target/redrive-error.log | grep -qx None; then
          aws sqs delete-message --region "$HOME_REGION" --queue-url "$url" --receipt-handle "$receipt"
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
