//! EventBridge event → what kind of privileged use it records, if any. No I/O.
//!
//! A record is tried against the kinds' own rule patterns (`kind`, evaluated by `pattern`), so the
//! function reports exactly what the deployed rules deliver; then the kind's declaration says
//! where its person and its facts are.

use crate::event::cloudtrail::{Detail, Event};
use crate::event::kind::{Kind, Known, Person, Rule};
use crate::event::pattern;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use crate::event::kind::{API_CALL as API_CALL_DETAIL_TYPE, SIGN_IN as SIGN_IN_DETAIL_TYPE};
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";

/// Who used the privilege, as far as the record tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Root,
    /// A person known by e-mail (SAML user name, session name, switched-from user).
    Person {
        email: String,
    },
    /// A workload known by its OIDC subject (`repo:org/repo:ref:…`).
    Workload {
        subject: String,
    },
    /// Only an ARN or principal ID is known.
    Principal {
        id: String,
    },
}

impl Identity {
    pub fn email(&self) -> Option<&str> {
        match self {
            Identity::Person { email } => Some(email),
            Identity::Root | Identity::Workload { .. } | Identity::Principal { .. } => None,
        }
    }

    /// Plain text naming the identity (untrusted: escape before display).
    pub fn label(&self) -> &str {
        match self {
            Identity::Root => "root",
            Identity::Person { email } => email,
            Identity::Workload { subject } => subject,
            Identity::Principal { id } => id,
        }
    }
}

/// One privileged use, as plain data for `wording` and `render`. Every `String` here came from
/// the record and is untrusted text.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivilegedUse {
    pub kind: Kind,
    pub event_id: String,
    pub account_id: String,
    pub identity: Identity,
    pub role_arn: Option<String>,
    /// IAM Identity Center permission set, read from an `AWSReservedSSO_<set>_<id>` role name.
    pub permission_set: Option<String>,
    /// The API called.
    pub event_name: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub mfa_used: Option<bool>,
    pub region: Option<String>,
    pub time: Option<DateTime<Utc>>,
    /// Why the attempt failed (failed sign-in, denied call); `None` when it succeeded.
    pub failure: Option<String>,
    /// What was acted on (a trail, a rule, a function, a role, a secret).
    pub target: Option<String>,
    /// AssumeRoot: the member account the root session is for, and the task policy.
    pub target_account: Option<String>,
    pub task: Option<String>,
    /// AssumeRoleWithWebIdentity: the OIDC provider.
    pub provider: Option<String>,
    /// SwitchRole: the identity that switched.
    pub switched_from: Option<String>,
    /// A cross-account call: the account on the other side (the caller's, or the role's).
    pub other_account: Option<String>,
    /// CloudTrail's `sharedEventID`: the same call as recorded in the other account.
    pub shared_event_id: Option<String>,
    /// A root call made with temporary credentials outside the console: a centralized root
    /// session (AssumeRoot from the management account) as far as the record can tell.
    pub centralized_root: bool,
    /// The access key that ties an AssumeRoot to its root session's calls: the key AssumeRoot
    /// issued, or the key a root call in such a session used.
    pub session_key: Option<String>,
    /// The assumed-role session this use opened (an admin role's start) or was made in (an
    /// admin session's call): its later calls' activity line joins this notice's thread.
    pub session: Option<crate::event::session::SessionRef>,
}

impl PrivilegedUse {
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }
}

/// What an incoming event asks privwatch to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    Use(Box<PrivilegedUse>),
    /// The periodic sweep of the justification loop (an EventBridge schedule). `account` is the
    /// schedule's own account: a sweep acts only on that account's notices, so deployments of
    /// several accounts can share one channel.
    Sweep {
        account: String,
        region: String,
    },
    /// A sign of life from an account and region: a spoke's scheduled heartbeat, or the CloudTrail
    /// record of its canary (see [`Signal`]), and when.
    Heartbeat {
        account: String,
        region: String,
        time: i64,
        signal: Signal,
    },
    /// The scheduled catch-up of long series' notices (`<function>-catchup`, with the archive).
    CatchUp,
    /// Not something privwatch reports; the reason is logged.
    Ignored(&'static str),
}

/// What a sign of life proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// A scheduled event (`<function>-heartbeat`): the spoke's rules and the way to privwatch
    /// work — not that CloudTrail records anything.
    Schedule,
    /// The CloudTrail record of the canary's write (`ssm:PutParameter` on `/<function>/canary`,
    /// made by an EventBridge Scheduler schedule): CloudTrail records this account and region,
    /// and its records reach privwatch.
    Trail,
}

impl Classified {
    /// Whether the organization's accounts could change this result: only a trust decision
    /// depends on which accounts are the deployment's own (classify again with
    /// [`classify_knowing`] then).
    pub fn depends_on_known_accounts(&self) -> bool {
        matches!(self, Classified::Use(u) if u.kind == Kind::TrustOpened)
    }
}

/// What the function knows of its own deployment: the kinds' rule patterns with the
/// placeholders that name privwatch's own resources filled in (the admin roles stay the rules'
/// decision), compiled once at init, in the order records are tried.
#[derive(Debug, Clone)]
pub struct Deployment {
    rules: Vec<(Kind, &'static Rule, Value)>,
    /// `DEPLOY_ROLE_ARN`: changes made by it are privwatch's own deploys, not tampering.
    pub deploy_role: Option<String>,
    /// Organization mode: the spokes are rolled out by service-managed StackSets, whose
    /// execution roles' changes through CloudFormation are not tampering. A per-account
    /// deployment has no StackSets: there a role of that name is anybody's.
    pub stacksets_roll_out: bool,
    /// Accounts that are this deployment's own besides the record's (`ACCOUNT_NAMES`): a trust
    /// policy letting them in opens nothing.
    pub known_accounts: Vec<String>,
    /// The canary's parameter, `/<function>/canary`: its writes' records are signs of life.
    pub canary_parameter: String,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment::new("privwatch", None, None)
    }
}

impl Deployment {
    /// The admin permission sets (`ADMIN_PERMISSION_SET_ARNS`, resolved at deploy): the
    /// assignment rule's `"$ADMIN_PERMISSION_SETS"` is decided here as in the deployed rule — an
    /// admin session's other calls reach the function by their own rule and must not pass it —
    /// and with none the rule is left out, as `synth.py` leaves it out.
    pub fn with_permission_sets(mut self, arns: &[String]) -> Self {
        let list = Value::from(arns.to_vec()).to_string();
        self.rules.retain_mut(|(_, rule, pattern)| {
            if !rule.pattern.contains("\"$ADMIN_PERMISSION_SETS\"") {
                return true;
            }
            if arns.is_empty() {
                return false;
            }
            let text = pattern
                .to_string()
                .replace("\"$ADMIN_PERMISSION_SETS\"", &list);
            *pattern = serde_json::from_str(&text).unwrap_or(Value::Null);
            true
        });
        self
    }

    /// `function_name`: `AWS_LAMBDA_FUNCTION_NAME` (the rules are named `<function>-…`);
    /// `secret_arn`: the token secret, which may also be addressed by its name.
    pub fn new(function_name: &str, secret_arn: Option<&str>, deploy_role: Option<&str>) -> Self {
        let mut secret_ids = vec![format!("{function_name}/slack-bot-token")];
        secret_ids.extend(secret_arn.and_then(secret_name));
        let secret_matchers = Value::Array(
            secret_ids
                .iter()
                .map(|name| serde_json::json!({"wildcard": format!("*{name}*")}))
                .collect(),
        )
        .to_string();
        let rules = Kind::ALL
            .into_iter()
            .flat_map(|kind| kind.spec().rules.iter().map(move |rule| (kind, rule)))
            .map(|(kind, rule)| {
                let text = rule
                    .pattern
                    .replace("${FunctionName}", function_name)
                    .replace("\"$TOKEN_SECRET_IDS\"", &secret_matchers);
                (
                    kind,
                    rule,
                    serde_json::from_str(&text).unwrap_or(Value::Null),
                )
            })
            .collect();
        Deployment {
            rules,
            deploy_role: deploy_role.map(str::to_string),
            stacksets_roll_out: false,
            known_accounts: Vec::new(),
            canary_parameter: format!("/{function_name}/canary"),
        }
    }
}

/// The canary's write, as CloudTrail recorded it: a sign of life of the account and region it
/// was recorded in (whoever made it, and whether it succeeded: a record is a record).
fn canary(record: &Record, deployment: &Deployment) -> Option<Classified> {
    let detail = &record.raw["detail"];
    let is_canary = record.event.source == "aws.ssm"
        && record.event.detail_type == API_CALL_DETAIL_TYPE
        && detail["eventSource"] == "ssm.amazonaws.com"
        && detail["eventName"] == "PutParameter"
        && detail["requestParameters"]["name"] == deployment.canary_parameter.as_str();
    if !is_canary {
        return None;
    }
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let account = text(&detail["recipientAccountId"]).or_else(|| record.event.account.clone())?;
    let region = text(&detail["awsRegion"]).or_else(|| record.event.region.clone())?;
    let time = text(&detail["eventTime"])
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.timestamp())
        .or_else(|| record.event.time.map(|t| t.timestamp()))
        .unwrap_or_else(|| Utc::now().timestamp());
    Some(Classified::Heartbeat {
        account,
        region,
        time,
        signal: Signal::Trail,
    })
}

/// `arn:aws:secretsmanager:r:a:secret:name-AbCdEf` → `name` (Secrets Manager adds 6 characters).
fn secret_name(arn: &str) -> Option<String> {
    let (_, name) = arn.split_once(":secret:")?;
    let name = match name.rsplit_once('-') {
        Some((stem, suffix)) if suffix.len() == 6 => stem,
        _ => name,
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// A parsed invocation: the typed event and the JSON it came from (patterns read the JSON).
#[derive(Debug, Clone)]
pub struct Record {
    pub event: Event,
    pub raw: Value,
}

#[derive(Debug, thiserror::Error)]
#[error("the event is not an EventBridge event privwatch can read ({0}); privwatch must be invoked by an EventBridge rule with the CloudTrail record as `detail`")]
pub struct ParseError(String);

/// Key of the object `main` hands on in place of a payload that is not JSON at all.
const UNREADABLE_PAYLOAD: &str = "privwatch-unreadable-payload";

/// What stands in for a payload that is not JSON (`why`: the JSON parser's message).
pub fn unreadable_payload_marker(why: &str) -> Value {
    serde_json::json!({ UNREADABLE_PAYLOAD: why })
}

/// Parses the raw invocation payload.
pub fn parse(payload: &Value) -> Result<Record, ParseError> {
    if let Some(why) = payload.get(UNREADABLE_PAYLOAD).and_then(Value::as_str) {
        return Err(ParseError(format!("the payload is not JSON: {why}")));
    }
    if !payload.is_object() {
        return Err(ParseError(format!(
            "expected a JSON object, got {}",
            json_type(payload)
        )));
    }
    match payload.get("detail") {
        Some(d) if d.is_object() => {}
        Some(d) => {
            return Err(ParseError(format!(
                "`detail` is {}, not an object",
                json_type(d)
            )))
        }
        None => return Err(ParseError("missing field `detail`".into())),
    }
    let event = serde_json::from_value(payload.clone()).map_err(|e| ParseError(e.to_string()))?;
    Ok(Record {
        event,
        raw: payload.clone(),
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decides what kind of privileged use `record` records: the first kind (in [`Kind::ALL`]'s
/// order) one of whose rules matches it.
pub fn classify(record: &Record, deployment: &Deployment) -> Classified {
    classify_knowing(record, deployment, Known::default())
}

/// [`classify`], knowing more than the deployment's configuration: the organization's accounts
/// (read at run time in organization mode).
pub fn classify_knowing(record: &Record, deployment: &Deployment, known: Known<'_>) -> Classified {
    let event = &record.event;
    if event.detail_type == SCHEDULED_DETAIL_TYPE && event.source == "aws.events" {
        let account = event.account.clone().unwrap_or_default();
        // The schedule that fired: a spoke's `<function>-heartbeat`, the catch-up of long
        // series (`<function>-catchup`), or the sweep.
        let rule_named = |suffix: &str| {
            record.raw["resources"].as_array().is_some_and(|resources| {
                resources
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|arn| arn.contains(":rule/") && arn.ends_with(suffix))
            })
        };
        if rule_named("-catchup") {
            return Classified::CatchUp;
        }
        let region = event.region.clone().unwrap_or_default();
        let heartbeat = rule_named("-heartbeat");
        if heartbeat {
            return Classified::Heartbeat {
                account,
                region,
                time: event
                    .time
                    .map_or_else(|| chrono::Utc::now().timestamp(), |t| t.timestamp()),
                signal: Signal::Schedule,
            };
        }
        return Classified::Sweep { account, region };
    }
    if let Some(canary) = canary(record, deployment) {
        return canary;
    }
    // The first kind whose rule matches and that does not except the record wins; a record one
    // kind excepts (a policy short of admin, GuardDuty kept on) may still be another's (a root
    // API call).
    // The configured accounts, and the organization's when the caller read them (only for a
    // trust decision): no copy for every other event.
    let merged: Vec<String>;
    let known = match known.accounts.is_empty() {
        true => Known {
            accounts: &deployment.known_accounts,
        },
        false => {
            merged = [&deployment.known_accounts[..], known.accounts].concat();
            Known { accounts: &merged }
        }
    };
    let mut excepted = None;
    for (kind, rule, pattern) in &deployment.rules {
        if !pattern::matches(pattern, &record.raw) {
            continue;
        }
        // A rule that decides by the admin roles matches any role here (the function does not
        // know them): a record another kind's rule delivered and that kind excepted is not
        // thereby an admin role's.
        if excepted.is_some() && rule.pattern.contains("\"$ADMIN_ROLE") {
            continue;
        }
        // privwatch's own rollout is nobody's use.
        if rule.spares_deployer {
            if let Some(reason) = privwatch_rollout(deployment, &record.raw) {
                return Classified::Ignored(reason);
            }
        }
        match (kind.spec().exception)(&record.raw, known) {
            Some(reason) => {
                excepted.get_or_insert(reason);
            }
            None => return Classified::Use(Box::new(describe(*kind, record))),
        }
    }
    Classified::Ignored(excepted.unwrap_or("matches none of privwatch's rules"))
}

/// A change to privwatch's own resources that is privwatch's own rollout, not tampering: made
/// through CloudFormation (`sourceIPAddress` is the service) by `DEPLOY_ROLE_ARN`, or by a
/// service-managed StackSet's execution role, which StackSets creates as `stacksets-exec-*` in
/// each target account ("Configure a custom execution role template for StackSets", AWS
/// CloudFormation User Guide). Every spoke rollout and automatic deployment would otherwise be a
/// critical tampering notice in every account and region. The same session used by hand (not
/// through CloudFormation) is still tampering. `scripts/synth.py` puts the same exemption into
/// the deployed rules' patterns.
fn privwatch_rollout(deployment: &Deployment, raw: &Value) -> Option<&'static str> {
    if text(raw, &["detail", "sourceIPAddress"]) != Some("cloudformation.amazonaws.com") {
        return None;
    }
    let issuer = text(
        raw,
        &[
            "detail",
            "userIdentity",
            "sessionContext",
            "sessionIssuer",
            "arn",
        ],
    )?;
    if deployment.deploy_role.as_deref() == Some(issuer) {
        return Some("a change made through CloudFormation by privwatch's own deploy role");
    }
    let role = issuer
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":iam::"))
        .and_then(|(_, rest)| rest.split_once(":role/"))
        .map(|(_, role)| role);
    if deployment.stacksets_roll_out && role.is_some_and(is_stacksets_execution_role) {
        return Some("a change made by a StackSets execution role (privwatch's spoke rollout)");
    }
    None
}

/// `stacksets-exec-` and 32 hexadecimal digits, at the root path: the role StackSets creates.
fn is_stacksets_execution_role(role: &str) -> bool {
    role.strip_prefix("stacksets-exec-")
        .is_some_and(|hash| hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn describe(kind: Kind, record: &Record) -> PrivilegedUse {
    let (event, raw) = (&record.event, &record.raw);
    let detail = &event.detail;
    let spec = kind.spec();
    let identity_record = detail.user_identity.clone().unwrap_or_default();
    let params = detail.request_parameters.clone().unwrap_or_default();
    let d = |path: &[&str]| {
        let mut full = vec!["detail"];
        full.extend_from_slice(path);
        text(raw, &full).map(str::to_string)
    };

    let identity = match spec.person {
        Person::Root => Identity::Root,
        Person::SamlUser => saml_identity(detail),
        Person::Caller => caller_identity(detail),
        Person::SwitchedFrom => switched_from_identity(raw, detail),
        Person::WebIdentity => {
            match d(&["userIdentity", "userName"])
                .or_else(|| d(&["responseElements", "subjectFromWebIdentityToken"]))
                .filter(|s| !s.trim().is_empty())
            {
                Some(subject) => Identity::Workload { subject },
                None => caller_identity(detail),
            }
        }
    };
    let role_arn = non_empty(params.role_arn.clone()).or_else(|| match spec.person {
        // SwitchRole: the role is only in the new session's ARN; an admin session's call: the
        // session it was made in.
        Person::SwitchedFrom => identity_record.arn.as_deref().and_then(role_of_session),
        Person::Caller if kind == Kind::AdminSession => {
            identity_record.arn.as_deref().and_then(role_of_session)
        }
        Person::Root | Person::SamlUser | Person::Caller | Person::WebIdentity => None,
    });
    let permission_set = role_arn.as_deref().and_then(permission_set_of);
    let mfa_used = match d(&["additionalEventData", "MFAUsed"]) {
        Some(v) if detail.event_name.as_deref() == Some("ConsoleLogin") => {
            Some(v.trim().eq_ignore_ascii_case("yes"))
        }
        _ => identity_record
            .session_context
            .as_ref()
            .and_then(|c| c.attributes.as_ref())
            .and_then(|a| a.mfa_authenticated.as_deref())
            .map(|v| v.trim().eq_ignore_ascii_case("true")),
    };
    let failure = sign_in_failure(raw, detail).or_else(|| {
        non_empty(detail.error_code.clone()).map(|code| {
            match non_empty(detail.error_message.clone()) {
                Some(message) => format!("{code}: {message}"),
                None => code,
            }
        })
    });
    let event_id = non_empty(detail.event_id.clone())
        .or_else(|| non_empty(event.id.clone()))
        .unwrap_or_else(|| "unknown".to_string());
    let account_id = non_empty(event.account.clone())
        .or_else(|| non_empty(detail.recipient_account_id.clone()))
        .or_else(|| non_empty(identity_record.account_id.clone()))
        .unwrap_or_else(|| "unknown".to_string());
    let time = detail
        .event_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or(event.time);
    // A cross-account call: the caller's account seen from the role's, or the role's account
    // seen from the caller's.
    let role_account = role_arn.as_deref().and_then(account_of_arn);
    let caller_account = non_empty(identity_record.account_id.clone());
    let other_account = [role_account, caller_account]
        .into_iter()
        .flatten()
        .find(|a| *a != account_id && a.chars().all(|c| c.is_ascii_digit()));
    // Root with temporary credentials not from the console: AssumeRoot's session (the record
    // may also say so, `sessionContext.assumedRoot`). Console sessions carry
    // `sessionCredentialFromConsole`; root access keys are long-term (`AKIA…`).
    let root = identity_record.identity_type.as_deref() == Some("Root");
    let centralized_root = root
        && (d(&["userIdentity", "sessionContext", "assumedRoot"])
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || (d(&["userIdentity", "accessKeyId"]).is_some_and(|k| k.starts_with("ASIA"))
                && d(&["sessionCredentialFromConsole"]).is_none()));
    let target = [
        &["requestParameters", "name"][..],
        &["requestParameters", "rule"],
        &["requestParameters", "functionName"],
        &["requestParameters", "roleName"],
        &["requestParameters", "secretId"],
        &["requestParameters", "trailName"],
        &["requestParameters", "userName"],
        &["requestParameters", "groupName"],
        &["requestParameters", "sAMLProviderArn"],
        &["requestParameters", "openIDConnectProviderArn"],
        &["requestParameters", "url"],
        &["requestParameters", "permissionSetArn"],
        &["requestParameters", "policyArn"],
        &["requestParameters", "detectorId"],
        &["requestParameters", "configurationRecorderName"],
        &["requestParameters", "deliveryChannelName"],
        &["requestParameters", "policyId"],
        &["requestParameters", "accountId"],
        &["requestParameters", "servicePrincipal"],
    ]
    .iter()
    .find_map(|path| d(path));

    PrivilegedUse {
        kind,
        event_id,
        account_id,
        identity,
        role_arn,
        permission_set,
        event_name: non_empty(detail.event_name.clone()),
        source_ip: non_empty(detail.source_ip_address.clone()),
        user_agent: non_empty(detail.user_agent.clone()),
        mfa_used,
        region: non_empty(detail.aws_region.clone()).or_else(|| non_empty(event.region.clone())),
        time,
        failure,
        target: target.filter(|_| spec.shows_target),
        target_account: d(&["requestParameters", "targetPrincipal"]),
        task: d(&["requestParameters", "taskPolicyArn", "arn"])
            .map(|arn| arn.rsplit('/').next().unwrap_or(&arn).to_string()),
        // The OIDC provider of a workload (a SAML record's provider is not shown).
        provider: (spec.person == Person::WebIdentity)
            .then(|| {
                d(&["userIdentity", "identityProvider"])
                    .or_else(|| d(&["responseElements", "provider"]))
            })
            .flatten()
            .map(|p| {
                p.rsplit_once("oidc-provider/")
                    .map_or(p.clone(), |(_, host)| host.to_string())
            }),
        switched_from: d(&["additionalEventData", "SwitchFrom"]),
        other_account,
        shared_event_id: d(&["sharedEventID"]),
        centralized_root,
        session_key: if spec.shows_issued_key {
            d(&["responseElements", "credentials", "accessKeyId"])
        } else if centralized_root {
            d(&["userIdentity", "accessKeyId"])
        } else {
            None
        },
        session: match kind {
            // A centralized root session's calls are joined by their key (`session_key`).
            Kind::AdminSession | Kind::RootApiCall if !centralized_root => {
                crate::event::session::of_call(&raw["detail"])
            }
            Kind::AdminSession | Kind::RootApiCall => None,
            _ => crate::event::session::started(&raw["detail"]),
        },
    }
}

/// A string at `path` in `value`, if it is one and not blank.
fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A sign-in record's own outcome (`responseElements.ConsoleLogin`, `SwitchRole`,
/// `PasswordUpdated`, … `: "Failure"`).
fn sign_in_failure(raw: &Value, detail: &Detail) -> Option<String> {
    let outcome = detail
        .event_name
        .as_deref()
        .and_then(|name| text(raw, &["detail", "responseElements", name]))?;
    outcome.eq_ignore_ascii_case("failure").then(|| {
        non_empty(detail.error_message.clone()).unwrap_or_else(|| "sign-in failed".to_string())
    })
}

/// `arn:aws:sts::1:assumed-role/Admin/bob` → `arn:aws:iam::1:role/Admin` (the path is not in
/// the session's ARN).
fn role_of_session(session_arn: &str) -> Option<String> {
    let (prefix, rest) = session_arn.split_once(":assumed-role/")?;
    let (role, _session) = rest.split_once('/')?;
    let account = prefix.rsplit(':').next()?;
    let partition = prefix.split(':').nth(1).unwrap_or("aws");
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

fn account_of_arn(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (!account.is_empty()).then(|| account.to_string())
}

/// The person behind an AssumeRoleWithSAML: `userIdentity.userName`, else the role session
/// name, else the part of `principalId` after the colon — whichever looks like an e-mail.
fn saml_identity(detail: &Detail) -> Identity {
    let identity = detail.user_identity.clone().unwrap_or_default();
    let params = detail.request_parameters.clone().unwrap_or_default();
    let after_colon = identity
        .principal_id
        .as_deref()
        .and_then(|p| p.rsplit_once(':'))
        .map(|(_, tail)| tail.to_string());
    let candidates = [
        identity.user_name.clone(),
        params.role_session_name,
        after_colon,
    ];
    if let Some(email) = candidates.iter().flatten().find(|c| looks_like_email(c)) {
        return Identity::Person {
            email: email.clone(),
        };
    }
    let fallback = non_empty(identity.user_name)
        .or_else(|| non_empty(identity.principal_id))
        .or_else(|| non_empty(identity.arn))
        .unwrap_or_else(|| "unknown SAML user".to_string());
    Identity::Principal { id: fallback }
}

/// Whoever made a call: the root user; else the session name of an assumed role, the IAM user's
/// name, or — for another account's caller, which the role's account sees only as
/// `AWSAccount` — the requested session name, whichever is an e-mail; else an ARN or ID.
fn caller_identity(detail: &Detail) -> Identity {
    let identity = detail.user_identity.clone().unwrap_or_default();
    let params = detail.request_parameters.clone().unwrap_or_default();
    if identity.identity_type.as_deref() == Some("Root") {
        return Identity::Root;
    }
    let session_name = identity
        .arn
        .as_deref()
        .filter(|arn| arn.contains(":assumed-role/"))
        .and_then(|arn| arn.rsplit('/').next())
        .map(str::to_string)
        .or_else(|| {
            identity
                .principal_id
                .as_deref()
                .and_then(|p| p.split_once(':'))
                .map(|(_, tail)| tail.to_string())
        });
    let cross_account = identity.identity_type.as_deref() == Some("AWSAccount");
    let requested_session = cross_account.then_some(params.role_session_name).flatten();
    let candidates = [session_name, identity.user_name.clone(), requested_session];
    if let Some(email) = candidates.iter().flatten().find(|c| looks_like_email(c)) {
        return Identity::Person {
            email: email.clone(),
        };
    }
    let fallback = non_empty(identity.arn)
        .or_else(|| {
            cross_account.then(|| {
                format!(
                    "account {} ({})",
                    identity.account_id.as_deref().unwrap_or("?"),
                    identity.principal_id.as_deref().unwrap_or("?")
                )
            })
        })
        .or_else(|| non_empty(identity.principal_id))
        .unwrap_or_else(|| "unknown caller".to_string());
    Identity::Principal { id: fallback }
}

/// Console SwitchRole: the identity in `SwitchFrom` (a user or a session named by e-mail), else
/// the new session's name, else `SwitchFrom` itself.
fn switched_from_identity(raw: &Value, detail: &Detail) -> Identity {
    let from = text(raw, &["detail", "additionalEventData", "SwitchFrom"]);
    let from_name = from.and_then(|arn| arn.rsplit('/').next());
    let session = detail
        .user_identity
        .as_ref()
        .and_then(|u| u.arn.as_deref())
        .and_then(|arn| arn.rsplit('/').next());
    if let Some(email) = [from_name, session]
        .into_iter()
        .flatten()
        .find(|c| looks_like_email(c))
    {
        return Identity::Person {
            email: email.to_string(),
        };
    }
    match from {
        Some(arn) => Identity::Principal {
            id: arn.to_string(),
        },
        None => caller_identity(detail),
    }
}

/// `AWSReservedSSO_AdministratorAccess_0123abcd` → `AdministratorAccess`.
pub fn permission_set_of(role_arn: &str) -> Option<String> {
    let role_name = role_arn.rsplit('/').next()?;
    let rest = role_name.strip_prefix("AWSReservedSSO_")?;
    let (set, _suffix) = rest.rsplit_once('_')?;
    (!set.is_empty()).then(|| set.to_string())
}

/// A conservative e-mail shape: what `users.lookupByEmail` could possibly match.
pub fn looks_like_email(candidate: &str) -> bool {
    let Some((local, domain)) = candidate.split_once('@') else {
        return false;
    };
    candidate.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.+-_'".contains(c))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(detail_type: &str, detail: Value) -> Record {
        let source = match detail["eventSource"].as_str() {
            Some(s) => format!("aws.{}", s.split('.').next().unwrap_or_default()),
            None => "aws.signin".to_string(),
        };
        parse(&json!({
            "version": "0", "id": "eb-1", "detail-type": detail_type,
            "source": source, "account": "111122223333",
            "time": "2026-11-01T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": detail
        }))
        .unwrap()
    }

    fn use_of(classified: Classified) -> PrivilegedUse {
        match classified {
            Classified::Use(u) => *u,
            other => panic!("expected a privileged use, got {other:?}"),
        }
    }

    fn fixture(name: &str) -> Record {
        let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        parse(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn a_stacksets_rollout_through_cloudformation_is_not_tampering_but_the_role_by_hand_is() {
        let deployment = Deployment {
            stacksets_roll_out: true,
            ..Deployment::default()
        };
        // A per-account deployment has no StackSets: a role of that name is anybody's.
        assert_eq!(
            use_of(classify(
                &fixture("stacksets-rollout-put-rule.json"),
                &Deployment::default()
            ))
            .kind,
            Kind::AlarmTampering
        );
        let rollout = fixture("stacksets-rollout-put-rule.json");
        assert!(matches!(
            classify(&rollout, &deployment),
            Classified::Ignored(reason) if reason.contains("StackSets")
        ));
        let by_hand = fixture("tamper-put-rule-stacksets-role-by-hand.json");
        assert_eq!(
            use_of(classify(&by_hand, &deployment)).kind,
            Kind::AlarmTampering
        );
        // Roles that only look like one (another prefix, another hash, a path) are not spared.
        for arn in [
            "arn:aws:iam::111122223333:role/my-stacksets-exec-3f4e9d1c2b7a4e0f9c8d7b6a5e4f3d2c",
            "arn:aws:iam::111122223333:role/stacksets-exec-x",
            "arn:aws:iam::111122223333:role/team/stacksets-exec-3f4e9d1c2b7a4e0f9c8d7b6a5e4f3d2c",
        ] {
            let mut raw = rollout.raw.clone();
            raw["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = json!(arn);
            assert_eq!(
                use_of(classify(&parse(&raw).unwrap(), &deployment)).kind,
                Kind::AlarmTampering,
                "{arn}"
            );
        }
    }

    #[test]
    fn the_deploy_role_is_spared_only_through_cloudformation() {
        let role = "arn:aws:iam::111122223333:role/privwatch-deployer";
        let deployment = Deployment::new("privwatch", None, Some(role));
        let mut raw = fixture("stacksets-rollout-put-rule.json").raw;
        raw["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = json!(role);
        assert!(matches!(
            classify(&parse(&raw).unwrap(), &deployment),
            Classified::Ignored(reason) if reason.contains("deploy role")
        ));
        raw["detail"]["sourceIPAddress"] = json!("216.160.83.56");
        assert_eq!(
            use_of(classify(&parse(&raw).unwrap(), &deployment)).kind,
            Kind::AlarmTampering
        );
    }

    #[test]
    fn root_sign_in_reads_mfa_case_insensitively() {
        for (raw, expected) in [("Yes", true), ("YES", true), ("No", false)] {
            let e = event(
                SIGN_IN_DETAIL_TYPE,
                json!({"userIdentity": {"type": "Root"}, "eventName": "ConsoleLogin",
                       "eventID": "e1", "responseElements": {"ConsoleLogin": "Success"},
                       "additionalEventData": {"MFAUsed": raw}}),
            );
            let u = use_of(classify(&e, &Deployment::default()));
            assert_eq!(u.kind, Kind::RootConsoleSignIn);
            assert_eq!(u.mfa_used, Some(expected), "MFAUsed={raw}");
            assert!(!u.failed());
        }
    }

    #[test]
    fn failed_root_sign_in_keeps_the_error_message() {
        let e = event(
            SIGN_IN_DETAIL_TYPE,
            json!({"userIdentity": {"type": "Root"}, "eventName": "ConsoleLogin",
                   "responseElements": {"ConsoleLogin": "Failure"},
                   "errorMessage": "Failed authentication"}),
        );
        let u = use_of(classify(&e, &Deployment::default()));
        assert_eq!(u.failure.as_deref(), Some("Failed authentication"));
        assert_eq!(u.event_id, "eb-1", "falls back to the EventBridge id");
    }

    /// An IAM user's console sign-in is a kind of its own (its rule is deployed only with
    /// `IAM_USER_SIGN_IN=notice`); another sign-in event of an IAM user is nothing.
    #[test]
    fn an_iam_user_console_sign_in_is_its_kind_and_nothing_else_is() {
        let e = event(
            SIGN_IN_DETAIL_TYPE,
            json!({"eventName": "ConsoleLogin",
                   "userIdentity": {"type": "IAMUser", "userName": "alice@example.com"}}),
        );
        let u = use_of(classify(&e, &Deployment::default()));
        assert_eq!(u.kind, Kind::IamUserSignIn);
        let other = event(
            SIGN_IN_DETAIL_TYPE,
            json!({"eventName": "PasswordUpdated", "userIdentity": {"type": "IAMUser", "userName": "alice"}}),
        );
        assert!(matches!(
            classify(&other, &Deployment::default()),
            Classified::Ignored(_)
        ));
    }

    #[test]
    fn saml_person_comes_from_the_first_field_that_is_an_email() {
        let cases = [
            (
                json!({"userName": "alice@example.com", "principalId": "x:bob@example.com"}),
                json!({"roleSessionName": "carol@example.com"}),
                "alice@example.com",
            ),
            (
                json!({"userName": "not-an-email", "principalId": "x:bob@example.com"}),
                json!({"roleSessionName": "carol@example.com"}),
                "carol@example.com",
            ),
            (
                json!({"principalId": "abc=:bob@example.com"}),
                json!({}),
                "bob@example.com",
            ),
        ];
        for (identity, params, expected) in cases {
            let mut identity = identity;
            identity["type"] = json!("SAMLUser");
            let mut params = params;
            params["roleArn"] = json!("arn:aws:iam::111122223333:role/Admin");
            let e = event(
                API_CALL_DETAIL_TYPE,
                json!({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRoleWithSAML",
                       "userIdentity": identity, "requestParameters": params}),
            );
            let u = use_of(classify(&e, &Deployment::default()));
            assert_eq!(u.kind, Kind::AdminRoleViaSaml);
            assert_eq!(u.identity.email(), Some(expected));
        }
    }

    #[test]
    fn identity_center_roles_show_the_permission_set() {
        assert_eq!(
            permission_set_of("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_0123456789abcdef").as_deref(),
            Some("AdministratorAccess")
        );
        assert_eq!(
            permission_set_of("arn:aws:iam::111122223333:role/Admin"),
            None
        );
        assert_eq!(permission_set_of("AWSReservedSSO__x"), None);
    }

    #[test]
    fn root_api_call_names_the_action() {
        let e = event(
            API_CALL_DETAIL_TYPE,
            json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
                   "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}}),
        );
        let u = use_of(classify(&e, &Deployment::default()));
        assert_eq!(u.kind, Kind::RootApiCall);
        assert_eq!(u.event_name.as_deref(), Some("CreateUser"));
        assert_eq!(u.identity, Identity::Root);
    }

    /// A trust policy letting in an account `ACCOUNT_NAMES` lists, or one the caller knows (the
    /// organization's), opens nothing; any other account opens the role.
    #[test]
    fn known_accounts_come_from_the_deployment_and_the_caller() {
        let e = event(
            API_CALL_DETAIL_TYPE,
            json!({"eventSource": "iam.amazonaws.com", "eventName": "UpdateAssumeRolePolicy",
                   "requestParameters": {"roleName": "r", "policyDocument":
                       r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::193672423079:root"},"Action":"sts:AssumeRole"}]}"#},
                   "userIdentity": {"type": "IAMUser", "userName": "alice"}}),
        );
        let mut deployment = Deployment::default();
        let opened = classify(&e, &deployment);
        assert!(opened.depends_on_known_accounts(), "{opened:?}");
        deployment.known_accounts = vec!["193672423079".to_string()];
        assert!(matches!(classify(&e, &deployment), Classified::Ignored(_)));
        deployment.known_accounts = vec!["444455556666".to_string()];
        let org = vec!["193672423079".to_string()];
        let known = Known { accounts: &org };
        assert!(matches!(
            classify_knowing(&e, &deployment, known),
            Classified::Ignored(_)
        ));
    }

    /// A root access key, or root without its MFA, is critical: a kind of its own.
    /// A record one kind excepts is still another's: root writing an inline policy short of
    /// admin is a root API call, not nothing.
    #[test]
    fn a_record_one_kind_excepts_falls_to_the_next() {
        let by = |identity: Value| {
            event(
                API_CALL_DETAIL_TYPE,
                json!({"eventSource": "iam.amazonaws.com", "eventName": "PutUserPolicy",
                       "requestParameters": {"userName": "bob", "policyName": "p",
                                             "policyDocument": "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}}"},
                       "userIdentity": identity}),
            )
        };
        let root = by(json!({"type": "Root", "arn": "arn:aws:iam::111122223333:root"}));
        let u = use_of(classify(&root, &Deployment::default()));
        assert_eq!(u.kind, Kind::RootApiCall);
        let alice = by(json!({"type": "IAMUser", "userName": "alice"}));
        assert!(matches!(
            classify(&alice, &Deployment::default()),
            Classified::Ignored(_)
        ));
    }

    #[test]
    fn root_credentials_are_their_own_critical_kind() {
        for name in [
            "CreateAccessKey",
            "DeactivateMFADevice",
            "DeleteVirtualMFADevice",
        ] {
            let e = event(
                API_CALL_DETAIL_TYPE,
                json!({"eventSource": "iam.amazonaws.com", "eventName": name,
                       "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}}),
            );
            let u = use_of(classify(&e, &Deployment::default()));
            assert_eq!(u.kind, Kind::RootCredentials, "{name}");
            assert_eq!(
                u.kind.spec().severity,
                crate::event::kind::Severity::Critical
            );
        }
    }

    #[test]
    fn assume_role_person_from_session_name_else_arn() {
        let with_email = event(
            API_CALL_DETAIL_TYPE,
            json!({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
                   "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Base/dave@example.com"},
                   "requestParameters": {"roleArn": "arn:aws:iam::444455556666:role/Admin"}}),
        );
        let u = use_of(classify(&with_email, &Deployment::default()));
        assert_eq!(u.identity.email(), Some("dave@example.com"));
        assert_eq!(
            u.role_arn.as_deref(),
            Some("arn:aws:iam::444455556666:role/Admin")
        );

        let without = event(
            API_CALL_DETAIL_TYPE,
            json!({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
                   "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Base/i-0abc"},
                   "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/Admin"}}),
        );
        let u = use_of(classify(&without, &Deployment::default()));
        assert_eq!(
            u.identity,
            Identity::Principal {
                id: "arn:aws:sts::111122223333:assumed-role/Base/i-0abc".into()
            }
        );
    }

    #[test]
    fn other_api_calls_are_ignored() {
        let e = event(
            API_CALL_DETAIL_TYPE,
            json!({"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
                   "userIdentity": {"type": "AssumedRole"}}),
        );
        assert!(matches!(
            classify(&e, &Deployment::default()),
            Classified::Ignored(_)
        ));
    }

    #[test]
    fn malformed_payloads_are_errors_naming_the_problem() {
        let err = parse(&json!("hello")).unwrap_err().to_string();
        assert!(
            err.contains("expected a JSON object, got a string"),
            "{err}"
        );
        let err = parse(&json!({"detail-type": "x", "source": "y"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `detail`"), "{err}");
        let err = parse(&json!({"detail": {}, "source": "y"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("detail-type"), "{err}");
    }

    #[test]
    fn emails_are_recognised_conservatively() {
        assert!(looks_like_email("a.b+c@example.co.jp"));
        for bad in [
            "",
            "@x.com",
            "a@",
            "a@b",
            "a@.com",
            "<!here>@x.com",
            "a b@x.com",
            "a@b@c.com",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
