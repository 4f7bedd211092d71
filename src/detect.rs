//! EventBridge event → what kind of privileged use it records, if any. No I/O.

use crate::cloudtrail::{Detail, Event};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub const SIGN_IN_DETAIL_TYPE: &str = "AWS Console Sign In via CloudTrail";
pub const API_CALL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";

/// The kinds of privileged use privwatch reports. A new kind is one variant here, one wording
/// in `notice`, and one rule in `infra/notifier.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The root user signed in (or tried to) to the AWS console.
    RootConsoleSignIn,
    /// Someone federated into an admin role through SAML (Google Workspace, IAM Identity Center).
    AdminRoleViaSaml,
    /// The root user called an AWS API (CreateAccessKey, EnableMFADevice, …).
    RootApiCall,
    /// Someone assumed an admin role with sts:AssumeRole (role chaining, cross-account switch).
    AdminRoleViaAssumeRole,
}

impl Kind {
    /// Stable machine name, used in Slack metadata and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RootConsoleSignIn => "root_console_sign_in",
            Kind::AdminRoleViaSaml => "admin_role_via_saml",
            Kind::RootApiCall => "root_api_call",
            Kind::AdminRoleViaAssumeRole => "admin_role_via_assume_role",
        }
    }
}

/// Who used the privilege, as far as the record tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Root,
    /// A person known by e-mail (SAML user name, session name).
    Person {
        email: String,
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
            _ => None,
        }
    }

    /// Plain text naming the identity (untrusted: escape before display).
    pub fn label(&self) -> &str {
        match self {
            Identity::Root => "root",
            Identity::Person { email } => email,
            Identity::Principal { id } => id,
        }
    }
}

/// One privileged use, as plain data for `notice` to render. Every `String` here except `kind`
/// came from the record and is untrusted text.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivilegedUse {
    pub kind: Kind,
    pub event_id: String,
    pub account_id: String,
    pub identity: Identity,
    pub role_arn: Option<String>,
    /// IAM Identity Center permission set, read from an `AWSReservedSSO_<set>_<id>` role name.
    pub permission_set: Option<String>,
    /// The API called (root API activity, failed calls).
    pub event_name: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub mfa_used: Option<bool>,
    pub region: Option<String>,
    pub time: Option<DateTime<Utc>>,
    /// Why the attempt failed (failed sign-in, denied call); `None` when it succeeded.
    pub failure: Option<String>,
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
    },
    /// Not something privwatch reports; the reason is logged.
    Ignored(&'static str),
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
pub fn parse(payload: &Value) -> Result<Event, ParseError> {
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
    serde_json::from_value(payload.clone()).map_err(|e| ParseError(e.to_string()))
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

/// Decides what kind of privileged use `event` records.
pub fn classify(event: &Event) -> Classified {
    let detail = &event.detail;
    let identity_type = detail
        .user_identity
        .as_ref()
        .and_then(|u| u.identity_type.as_deref());
    let event_name = detail.event_name.as_deref();
    let is_sts = detail.event_source.as_deref() == Some("sts.amazonaws.com");

    let kind = match event.detail_type.as_str() {
        SCHEDULED_DETAIL_TYPE if event.source == "aws.events" => {
            return Classified::Sweep {
                account: event.account.clone().unwrap_or_default(),
            }
        }
        SIGN_IN_DETAIL_TYPE => {
            if identity_type != Some("Root") {
                return Classified::Ignored("console sign-in by a non-root identity");
            }
            if event_name.is_some_and(|n| n != "ConsoleLogin") {
                return Classified::Ignored("sign-in event other than ConsoleLogin");
            }
            Kind::RootConsoleSignIn
        }
        API_CALL_DETAIL_TYPE => {
            if is_sts && event_name == Some("AssumeRoleWithSAML") {
                Kind::AdminRoleViaSaml
            } else if identity_type == Some("Root") {
                Kind::RootApiCall
            } else if is_sts && event_name == Some("AssumeRole") {
                Kind::AdminRoleViaAssumeRole
            } else {
                return Classified::Ignored(
                    "API call that is neither root activity nor an admin role assumption",
                );
            }
        }
        _ => return Classified::Ignored("detail-type privwatch does not handle"),
    };
    Classified::Use(Box::new(describe(kind, event)))
}

fn describe(kind: Kind, event: &Event) -> PrivilegedUse {
    let detail = &event.detail;
    let identity_record = detail.user_identity.clone().unwrap_or_default();
    let params = detail.request_parameters.clone().unwrap_or_default();

    let identity = match kind {
        Kind::RootConsoleSignIn | Kind::RootApiCall => Identity::Root,
        Kind::AdminRoleViaSaml => saml_identity(detail),
        Kind::AdminRoleViaAssumeRole => caller_identity(detail),
    };
    let role_arn = match kind {
        Kind::AdminRoleViaSaml | Kind::AdminRoleViaAssumeRole => non_empty(params.role_arn),
        _ => None,
    };
    let permission_set = role_arn.as_deref().and_then(permission_set_of);
    let mfa_used = match kind {
        Kind::RootConsoleSignIn => detail
            .additional_event_data
            .as_ref()
            .and_then(|d| d.mfa_used.as_deref())
            .map(|v| v.trim().eq_ignore_ascii_case("yes")),
        _ => identity_record
            .session_context
            .as_ref()
            .and_then(|c| c.attributes.as_ref())
            .and_then(|a| a.mfa_authenticated.as_deref())
            .map(|v| v.trim().eq_ignore_ascii_case("true")),
    };
    let failure = match kind {
        Kind::RootConsoleSignIn => {
            let login = detail
                .response_elements
                .as_ref()
                .and_then(|r| r.console_login.as_deref());
            if login.is_some_and(|l| l.eq_ignore_ascii_case("failure")) {
                Some(
                    non_empty(detail.error_message.clone())
                        .unwrap_or_else(|| "sign-in failed".to_string()),
                )
            } else {
                None
            }
        }
        _ => non_empty(detail.error_code.clone()).map(|code| {
            match non_empty(detail.error_message.clone()) {
                Some(message) => format!("{code}: {message}"),
                None => code,
            }
        }),
    };
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
    }
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

/// The caller of an AssumeRole: its session name when that is an e-mail, else its ARN.
fn caller_identity(detail: &Detail) -> Identity {
    let identity = detail.user_identity.clone().unwrap_or_default();
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
    let candidates = [session_name, identity.user_name.clone()];
    if let Some(email) = candidates.iter().flatten().find(|c| looks_like_email(c)) {
        return Identity::Person {
            email: email.clone(),
        };
    }
    let fallback = non_empty(identity.arn)
        .or_else(|| non_empty(identity.principal_id))
        .unwrap_or_else(|| "unknown caller".to_string());
    Identity::Principal { id: fallback }
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

    fn event(detail_type: &str, detail: Value) -> Event {
        parse(&json!({
            "version": "0", "id": "eb-1", "detail-type": detail_type,
            "source": "aws.signin", "account": "111122223333",
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

    #[test]
    fn root_sign_in_reads_mfa_case_insensitively() {
        for (raw, expected) in [("Yes", true), ("YES", true), ("No", false)] {
            let e = event(
                SIGN_IN_DETAIL_TYPE,
                json!({"userIdentity": {"type": "Root"}, "eventName": "ConsoleLogin",
                       "eventID": "e1", "responseElements": {"ConsoleLogin": "Success"},
                       "additionalEventData": {"MFAUsed": raw}}),
            );
            let u = use_of(classify(&e));
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
        let u = use_of(classify(&e));
        assert_eq!(u.failure.as_deref(), Some("Failed authentication"));
        assert_eq!(u.event_id, "eb-1", "falls back to the EventBridge id");
    }

    #[test]
    fn iam_user_sign_in_is_ignored() {
        let e = event(
            SIGN_IN_DETAIL_TYPE,
            json!({"userIdentity": {"type": "IAMUser", "userName": "alice"}}),
        );
        assert!(matches!(classify(&e), Classified::Ignored(_)));
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
                Value::Null,
                "bob@example.com",
            ),
        ];
        for (identity, params, expected) in cases {
            let mut identity = identity;
            identity["type"] = json!("SAMLUser");
            let e = event(
                API_CALL_DETAIL_TYPE,
                json!({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRoleWithSAML",
                       "userIdentity": identity, "requestParameters": params}),
            );
            let u = use_of(classify(&e));
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
            json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
                   "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}}),
        );
        let u = use_of(classify(&e));
        assert_eq!(u.kind, Kind::RootApiCall);
        assert_eq!(u.event_name.as_deref(), Some("CreateAccessKey"));
        assert_eq!(u.identity, Identity::Root);
    }

    #[test]
    fn assume_role_person_from_session_name_else_arn() {
        let with_email = event(
            API_CALL_DETAIL_TYPE,
            json!({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
                   "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Base/dave@example.com"},
                   "requestParameters": {"roleArn": "arn:aws:iam::444455556666:role/Admin"}}),
        );
        let u = use_of(classify(&with_email));
        assert_eq!(u.identity.email(), Some("dave@example.com"));
        assert_eq!(
            u.role_arn.as_deref(),
            Some("arn:aws:iam::444455556666:role/Admin")
        );

        let without = event(
            API_CALL_DETAIL_TYPE,
            json!({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
                   "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Base/i-0abc"}}),
        );
        let u = use_of(classify(&without));
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
        assert!(matches!(classify(&e), Classified::Ignored(_)));
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
