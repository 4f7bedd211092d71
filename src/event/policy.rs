//! PURE. IAM policy documents as privwatch reads them: from a CloudTrail record (a JSON string,
//! URL-encoded or not, or an object) or from IAM and Identity Center (URL-encoded JSON), and the
//! one question asked of them — does it make its holder admin?

use crate::encoding::percent_decode;
use serde_json::Value;

/// AWS's managed `AdministratorAccess` policy, in any partition.
pub(crate) fn is_administrator_access(arn: &str) -> bool {
    arn.starts_with("arn:") && arn.ends_with(":iam::aws:policy/AdministratorAccess")
}

/// A policy document as CloudTrail records it: a JSON string, URL-encoded or not, or an object.
pub(crate) fn document(recorded: &Value) -> Option<Value> {
    match recorded {
        Value::String(text) => serde_json::from_str::<Value>(text)
            .ok()
            .or_else(|| percent_decode(text).and_then(|t| serde_json::from_str(&t).ok())),
        Value::Object(_) => Some(recorded.clone()),
        _ => None,
    }
}

/// The statements of a policy document (one statement may stand alone).
pub(crate) fn statements(document: &Value) -> Vec<Value> {
    match &document["Statement"] {
        Value::Array(list) => list.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => Vec::new(),
    }
}

/// Some statement allows `*` on `*`.
pub(crate) fn allows_everything(document: &Value) -> bool {
    let has_star = |v: &Value| match v {
        Value::String(s) => s == "*",
        Value::Array(list) => list.iter().any(|x| x == "*"),
        _ => false,
    };
    statements(document).iter().any(|s| {
        s["Effect"] == "Allow"
            && has_star(&s["Action"])
            && has_star(&s["Resource"])
            && s.get("NotAction").is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrator_access_in_any_partition_and_nothing_like_it() {
        assert!(is_administrator_access(
            "arn:aws:iam::aws:policy/AdministratorAccess"
        ));
        assert!(is_administrator_access(
            "arn:aws-us-gov:iam::aws:policy/AdministratorAccess"
        ));
        assert!(!is_administrator_access(
            "arn:aws:iam::aws:policy/AdministratorAccess-Amplify"
        ));
        assert!(!is_administrator_access(
            "arn:aws:iam::111122223333:policy/NotAdministratorAccess"
        ));
    }

    #[test]
    fn a_document_in_each_encoding_and_not_action_is_not_everything() {
        let admin = r#"{"Statement":{"Effect":"Allow","Action":["*"],"Resource":"*"}}"#;
        let encoded = "%7B%22Statement%22%3A%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%7D";
        for recorded in [
            Value::from(admin),
            Value::from(encoded),
            serde_json::from_str(admin).unwrap(),
        ] {
            assert!(
                allows_everything(&document(&recorded).unwrap()),
                "{recorded}"
            );
        }
        let not_action =
            r#"{"Statement":{"Effect":"Allow","Action":"*","NotAction":"iam:*","Resource":"*"}}"#;
        assert!(!allows_everything(
            &document(&Value::from(not_action)).unwrap()
        ));
        assert!(document(&Value::from("not json")).is_none());
    }
}
