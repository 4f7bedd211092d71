//! The parts of a CloudTrail record (the `detail` of an EventBridge event) that privwatch reads.
//!
//! Real records are messy: `requestParameters` may be `null`, fields may be missing, and a few
//! hold attacker-chosen text. Every field here is therefore optional and *lenient*: a value of
//! the wrong JSON type reads as absent instead of failing the whole record.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event exactly as Lambda receives it from an EventBridge rule.
pub type Event = EventBridgeEvent<Detail>;

/// `detail` of an "AWS API Call via CloudTrail" or "AWS Console Sign In via CloudTrail" event.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Detail {
    #[serde(deserialize_with = "lenient")]
    pub user_identity: Option<UserIdentity>,
    #[serde(deserialize_with = "lenient")]
    pub event_time: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub event_source: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub event_name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub aws_region: Option<String>,
    #[serde(rename = "sourceIPAddress", deserialize_with = "lenient")]
    pub source_ip_address: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub user_agent: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub error_code: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub error_message: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub request_parameters: Option<RequestParameters>,
    #[serde(deserialize_with = "lenient")]
    pub response_elements: Option<ResponseElements>,
    #[serde(deserialize_with = "lenient")]
    pub additional_event_data: Option<AdditionalEventData>,
    #[serde(rename = "eventID", deserialize_with = "lenient")]
    pub event_id: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub recipient_account_id: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserIdentity {
    #[serde(rename = "type", deserialize_with = "lenient")]
    pub identity_type: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub principal_id: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub arn: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub account_id: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub user_name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub session_context: Option<SessionContext>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionContext {
    #[serde(deserialize_with = "lenient")]
    pub attributes: Option<SessionAttributes>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionAttributes {
    /// `"true"` / `"false"` as a string in real records.
    #[serde(deserialize_with = "lenient")]
    pub mfa_authenticated: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestParameters {
    #[serde(deserialize_with = "lenient")]
    pub role_arn: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub role_session_name: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ResponseElements {
    /// `Success` or `Failure` on a console sign-in.
    #[serde(rename = "ConsoleLogin", deserialize_with = "lenient")]
    pub console_login: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct AdditionalEventData {
    /// `Yes`, `YES` or `No` in real records.
    #[serde(rename = "MFAUsed", deserialize_with = "lenient")]
    pub mfa_used: Option<String>,
}

/// Reads any JSON value and keeps it only if it has the expected shape.
///
/// This is what lets `"requestParameters": null`, `"requestParameters": "null"` or a user agent
/// sent as an object read as "absent" instead of rejecting the whole record.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_and_wrongly_typed_fields_read_as_absent() {
        let detail: Detail = serde_json::from_value(json!({
            "requestParameters": null,
            "responseElements": "null",
            "userAgent": {"nested": ["deep"]},
            "sourceIPAddress": 42,
            "userIdentity": {"type": "Root", "arn": ["not", "a", "string"]},
            "eventID": "abc"
        }))
        .unwrap();
        assert_eq!(detail.request_parameters, None);
        assert_eq!(detail.response_elements, None);
        assert_eq!(detail.user_agent, None);
        assert_eq!(detail.source_ip_address, None);
        let identity = detail.user_identity.unwrap();
        assert_eq!(identity.identity_type.as_deref(), Some("Root"));
        assert_eq!(identity.arn, None);
        assert_eq!(detail.event_id.as_deref(), Some("abc"));
    }

    #[test]
    fn an_empty_detail_parses() {
        let detail: Detail = serde_json::from_value(json!({})).unwrap();
        assert_eq!(detail, Detail::default());
    }
}
