//! PURE. Which session a record belongs to, and what a session's call did.
//!
//! A session is known by its assumed-role ARN (`arn:aws:sts::<account>:assumed-role/<Role>/<name>`)
//! and the second it was created: the start's record (`AssumeRoleWithSAML`, `AssumeRole`,
//! `AssumeRoleWithWebIdentity`: `responseElements.assumedRoleUser.arn` at `eventTime`; a console
//! `SwitchRole`: the new session's `userIdentity.arn` at `eventTime`) and every later call's
//! (`userIdentity.arn` and `sessionContext.attributes.creationDate`) carry both. The access key a
//! start issues is not used: in real records a console or Identity Center session's calls carry
//! other keys than the one its start returned (the console renews them), while ARN and creation
//! time agree to the second. A start and a call within [`SAME_SESSION`] of each other's creation
//! time are one session.
//!
//! A call is reduced to what the activity line shows — never a request parameter's value (they
//! can carry secrets): its action (`iam:CreateUser`), the resources it names (ARNs CloudTrail
//! lists, or the name of the target), its error code, its time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How far apart a start's `eventTime` and a call's `creationDate` may be (both are recorded to
/// the second; a little slack for a start recorded in another region's clock tick).
pub const SAME_SESSION: i64 = 5;

/// One session: its ARN and when it was created (Unix seconds; 0: the record did not say).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRef {
    #[serde(rename = "a")]
    pub arn: String,
    #[serde(rename = "t")]
    pub created: i64,
}

impl SessionRef {
    /// The same session: the same ARN, created within [`SAME_SESSION`] (a side that does not
    /// know its creation time matches on the ARN).
    pub fn is(&self, other: &SessionRef) -> bool {
        self.arn == other.arn
            && (self.created == 0
                || other.created == 0
                || (self.created - other.created).abs() <= SAME_SESSION)
    }

    /// A stable name for the session (the S3 ledger's key).
    pub fn key(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}\n{}", self.arn, self.created));
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

fn text<'a>(detail: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(detail, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn seconds(time: Option<&str>) -> i64 {
    time.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| t.with_timezone(&Utc).timestamp())
}

/// The session a start record opens (`detail` is the CloudTrail record): an assumed role's, or
/// the root user's console session (a successful root `ConsoleLogin`, whose `eventTime` its
/// calls carry as `creationDate`).
pub fn started(detail: &Value) -> Option<SessionRef> {
    let created = seconds(text(detail, &["eventTime"]));
    let arn = match text(detail, &["eventName"])? {
        "SwitchRole" => text(detail, &["userIdentity", "arn"])?,
        "ConsoleLogin" => {
            let root = text(detail, &["userIdentity", "type"]) == Some("Root")
                && text(detail, &["responseElements", "ConsoleLogin"]) == Some("Success");
            let arn = text(detail, &["userIdentity", "arn"]).filter(|_| root)?;
            return Some(SessionRef {
                arn: arn.to_string(),
                created,
            });
        }
        _ => text(detail, &["responseElements", "assumedRoleUser", "arn"])?,
    };
    arn.contains(":assumed-role/").then(|| SessionRef {
        arn: arn.to_string(),
        created,
    })
}

/// The session a call was made in: an assumed role's, or the root user's console session (a
/// root call with a `creationDate`; a root access key's calls have no session).
pub fn of_call(detail: &Value) -> Option<SessionRef> {
    let arn = text(detail, &["userIdentity", "arn"])?;
    let created = seconds(text(
        detail,
        &[
            "userIdentity",
            "sessionContext",
            "attributes",
            "creationDate",
        ],
    ));
    let root = text(detail, &["userIdentity", "type"]) == Some("Root") && created > 0;
    (arn.contains(":assumed-role/") || root).then(|| SessionRef {
        arn: arn.to_string(),
        created,
    })
}

/// A call as the activity line counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub event_id: String,
    /// `<service>:<eventName>`, e.g. `iam:CreateUser`.
    pub action: String,
    /// The resources it names: CloudTrail's `resources[].ARN`, else the target's name.
    pub resources: Vec<String>,
    /// `errorCode` (`AccessDenied`, `Client.UnauthorizedOperation`, …).
    pub error: Option<String>,
    pub time: i64,
}

/// Request parameters that name what a call acts on (names, not values: never a policy, a
/// password or a secret's value).
const NAMES: &[&str] = &[
    "bucketName",
    "roleName",
    "userName",
    "groupName",
    "functionName",
    "policyArn",
    "instanceId",
    "dBInstanceIdentifier",
    "tableName",
    "keyId",
    "secretId",
    "stackName",
    "clusterName",
    "name",
];

/// What a call did, from its record.
pub fn call(detail: &Value, event_id: &str) -> Call {
    let service = text(detail, &["eventSource"])
        .map(|s| s.trim_end_matches(".amazonaws.com"))
        .unwrap_or("?");
    let action = format!("{service}:{}", text(detail, &["eventName"]).unwrap_or("?"));
    let mut resources: Vec<String> = detail["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["ARN"].as_str().or_else(|| r["arn"].as_str()))
        .map(str::to_string)
        .collect();
    if resources.is_empty() {
        resources.extend(
            NAMES
                .iter()
                .find_map(|n| text(detail, &["requestParameters", n]))
                .map(str::to_string),
        );
    }
    if resources.is_empty() {
        // EC2 lists its instances in a set.
        resources.extend(
            detail["requestParameters"]["instancesSet"]["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["instanceId"].as_str())
                .map(str::to_string),
        );
    }
    resources.truncate(8);
    Call {
        event_id: event_id.to_string(),
        action,
        resources,
        error: text(detail, &["errorCode"]).map(str::to_string),
        time: seconds(text(detail, &["eventTime"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_start_and_its_calls_are_one_session_by_arn_and_creation_time() {
        let arn = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_AdministratorAccess_0123/alice@example.com";
        let start = json!({"eventName": "AssumeRoleWithSAML", "eventTime": "2026-12-03T10:00:00Z",
            "responseElements": {"assumedRoleUser": {"arn": arn}, "credentials": {"accessKeyId": "ASIAONE"}}});
        let later = json!({"eventName": "CreateUser", "eventTime": "2026-12-03T10:20:00Z",
            "userIdentity": {"type": "AssumedRole", "arn": arn, "accessKeyId": "ASIATWO",
                "sessionContext": {"attributes": {"creationDate": "2026-12-03T10:00:01Z"}}}});
        let (s, c) = (started(&start).unwrap(), of_call(&later).unwrap());
        assert!(s.is(&c), "another key, the same session");
        let next_morning = json!({"userIdentity": {"arn": arn,
            "sessionContext": {"attributes": {"creationDate": "2026-12-04T09:00:00Z"}}}});
        assert!(
            !s.is(&of_call(&next_morning).unwrap()),
            "same role and name, another session"
        );
        let switch = json!({"eventName": "SwitchRole", "eventTime": "2026-12-03T10:00:00Z",
            "userIdentity": {"arn": arn}});
        assert_eq!(started(&switch).unwrap(), s);
        assert!(of_call(
            &json!({"userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob"}})
        )
        .is_none());
    }

    #[test]
    fn a_root_console_session_is_its_sign_in_and_its_calls() {
        let root = "arn:aws:iam::111122223333:root";
        let sign_in = json!({"eventName": "ConsoleLogin", "eventTime": "2026-11-01T09:12:44Z",
            "userIdentity": {"type": "Root", "arn": root}, "responseElements": {"ConsoleLogin": "Success"}});
        let call = json!({"userIdentity": {"type": "Root", "arn": root,
            "sessionContext": {"attributes": {"creationDate": "2026-11-01T09:12:44Z"}}}});
        assert!(started(&sign_in).unwrap().is(&of_call(&call).unwrap()));
        let failed = json!({"eventName": "ConsoleLogin", "eventTime": "2026-11-01T09:12:44Z",
            "userIdentity": {"type": "Root", "arn": root}, "responseElements": {"ConsoleLogin": "Failure"}});
        assert!(
            started(&failed).is_none(),
            "a failed sign-in opens no session"
        );
        let iam_user = json!({"eventName": "ConsoleLogin", "eventTime": "2026-11-01T09:12:44Z",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob"},
            "responseElements": {"ConsoleLogin": "Success"}});
        assert!(started(&iam_user).is_none());
        let key =
            json!({"userIdentity": {"type": "Root", "arn": root, "accessKeyId": "AKIAEXAMPLE"}});
        assert!(
            of_call(&key).is_none(),
            "a root access key's calls have no session"
        );
    }

    #[test]
    fn a_call_shows_its_action_resources_and_error_never_a_value() {
        let record = json!({"eventSource": "ec2.amazonaws.com", "eventName": "TerminateInstances",
            "eventTime": "2026-12-03T10:05:00Z", "errorCode": "Client.UnauthorizedOperation",
            "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}}});
        let c = call(&record, "e1");
        assert_eq!(c.action, "ec2:TerminateInstances");
        assert_eq!(c.resources, ["i-1", "i-2"]);
        assert_eq!(c.error.as_deref(), Some("Client.UnauthorizedOperation"));
        let secret = json!({"eventSource": "secretsmanager.amazonaws.com", "eventName": "PutSecretValue",
            "requestParameters": {"secretId": "prod/db", "secretString": "hunter2"}});
        let c = call(&secret, "e2");
        assert_eq!(c.resources, ["prod/db"]);
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
        let listed = json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
            "resources": [{"ARN": "arn:aws:iam::1:user/mallory", "type": "AWS::IAM::User"}],
            "requestParameters": {"userName": "mallory"}});
        assert_eq!(
            call(&listed, "e3").resources,
            ["arn:aws:iam::1:user/mallory"]
        );
    }
}
