//! The subset of EventBridge's event-pattern language privwatch's rules are written in, evaluated
//! in the function. The same pattern text is deployed as the rule (`infra/rules.json`, rendered by
//! `scripts/synth.py`) and used here to classify the record, so what a rule delivers and what the
//! function reports cannot drift apart. `tests/infra` checks the deployed rules with moto's own
//! matcher against the same fixtures: an independent implementation of the language.
//!
//! Deployment facts (which roles are admin roles, privwatch's function name) are not known to the
//! function: a pattern value written as a placeholder — a string starting with `$` in place of a
//! matcher list, or a matcher containing `${…}` — is decided by the rule, and matches any value
//! here.

use serde_json::Value;

/// Does `event` match `pattern`? Unknown operators never match (fail closed).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(key, want)| {
        if key == "$or" {
            return want
                .as_array()
                .is_some_and(|alternatives| alternatives.iter().any(|p| matches(p, event)));
        }
        let got = event.get(key);
        match want {
            Value::Object(_) => got.is_some_and(|g| matches(want, g)),
            Value::Array(matchers) => matchers.iter().any(|m| matcher(m, got)),
            // As a matcher list would: never an absent value, `null` or an object.
            Value::String(placeholder) if placeholder.starts_with('$') => {
                got.is_some_and(|g| !(g.is_null() || g.is_object()))
            }
            _ => false,
        }
    })
}

/// One element of a matcher list against the event's value (absent: `None`). An array in the
/// event matches when any of its elements does.
fn matcher(m: &Value, got: Option<&Value>) -> bool {
    if let Some(Value::Object(op)) = Some(m) {
        if let Some(exists) = op.get("exists").and_then(Value::as_bool) {
            return got.is_some() == exists;
        }
    }
    let Some(got) = got else {
        return false;
    };
    match got {
        Value::Array(items) => items.iter().any(|item| scalar(m, item)),
        Value::Object(_) => false,
        scalar_value => scalar(m, scalar_value),
    }
}

fn scalar(m: &Value, got: &Value) -> bool {
    let text = got.as_str();
    match m {
        Value::String(s) if s.contains("${") => true,
        Value::Object(op) => {
            let Some((name, arg)) = op.iter().next().filter(|_| op.len() == 1) else {
                return false;
            };
            let arg_str = arg.as_str().unwrap_or_default();
            if arg_str.contains("${") {
                return true;
            }
            match name.as_str() {
                "prefix" => text.is_some_and(|t| t.starts_with(arg_str)),
                "suffix" => text.is_some_and(|t| t.ends_with(arg_str)),
                "equals-ignore-case" => text.is_some_and(|t| t.eq_ignore_ascii_case(arg_str)),
                "wildcard" => text.is_some_and(|t| wildcard(arg_str, t)),
                "anything-but" => match arg {
                    Value::Array(values) => !values.iter().any(|v| v == got),
                    Value::Object(_) => !scalar(arg, got),
                    value => value != got,
                },
                _ => false,
            }
        }
        literal => literal == got,
    }
}

/// EventBridge's `wildcard`: `*` matches any run of characters (including none).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_operators_privwatch_uses() {
        let event = json!({"detail": {"eventName": "UpdateFunctionCode20150331v2",
            "userIdentity": {"type": "Root"}, "list": ["a", "b"], "n": 3}});
        let yes = [
            json!({"detail": {"userIdentity": {"type": ["Root"]}}}),
            json!({"detail": {"eventName": [{"prefix": "UpdateFunctionCode"}]}}),
            json!({"detail": {"eventName": [{"suffix": "v2"}]}}),
            json!({"detail": {"eventName": [{"wildcard": "Update*Code*v2"}]}}),
            json!({"detail": {"eventName": [{"anything-but": ["DeleteRule"]}]}}),
            json!({"detail": {"list": ["b"]}}),
            json!({"detail": {"n": [3]}}),
            json!({"detail": {"missing": [{"exists": false}]}}),
            json!({"detail": {"$or": [{"eventName": ["x"]}, {"n": [3]}]}}),
            json!({"detail": {"eventName": "$ADMIN_ROLE_ARNS"}}),
            json!({"detail": {"eventName": [{"prefix": "${FunctionName}-"}]}}),
        ];
        for p in yes {
            assert!(matches(&p, &event), "{p}");
        }
        let no = [
            json!({"detail": {"userIdentity": {"type": ["IAMUser"]}}}),
            json!({"detail": {"eventName": [{"prefix": "Delete"}]}}),
            json!({"detail": {"eventName": [{"anything-but": {"prefix": "Update"}}]}}),
            json!({"detail": {"missing": ["x"]}}),
            json!({"detail": {"missing": "$ADMIN_ROLE_ARNS"}}),
            json!({"detail": {"eventName": [{"numeric": [">", 0]}]}}),
            json!({"detail": {"$or": [{"eventName": ["x"]}, {"n": [4]}]}}),
        ];
        for p in no {
            assert!(!matches(&p, &event), "{p}");
        }
    }

    #[test]
    fn wildcards_match_like_eventbridge() {
        assert!(wildcard(
            "*AWSReservedSSO_Admin*",
            "x/AWSReservedSSO_Admin_1"
        ));
        assert!(wildcard("a*", "a"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b*c", "acb"));
        assert!(!wildcard("ab*ba", "aba"));
        assert!(wildcard(
            "arn:aws:sts::*:assumed-role/Admin/*",
            "arn:aws:sts::1:assumed-role/Admin/bob"
        ));
    }
}
