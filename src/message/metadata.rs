//! The Slack message metadata privwatch writes and reads back: the channel itself is the only
//! store (no database). `deliver` (dedupe, coalesce), `sweep` (chase) and `audit` (export) all
//! go through these types.

use crate::event::kind::Kind;
use crate::event::session::{Call, SessionRef};
use crate::message::mrkdwn::clip;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A notice (top-level message) for one or more privileged uses by one principal.
pub const NOTICE_EVENT_TYPE: &str = "privileged_use";
/// A line in a notice's thread for one event: the first reply (with the mention) or a repeat.
pub const LINE_EVENT_TYPE: &str = "privileged_use_reply";
/// The escalation reply of the chase.
pub const ESCALATION_EVENT_TYPE: &str = "privileged_use_escalation";
/// A justification made with the *Justify* button, posted by privwatch under the person's name.
pub const JUSTIFICATION_EVENT_TYPE: &str = "privileged_use_justification";
/// The rolling summary line of a long series (with the archive): one line, kept up to date.
pub const SUMMARY_EVENT_TYPE: &str = "privileged_use_summary";
/// The reply asking a person who answered for the ticket URL (or the purpose) their answer lacks.
pub const TICKET_ASK_EVENT_TYPE: &str = "privileged_use_ticket_ask";
/// The late ask of a person Slack could not find when the notice was posted.
pub const LATE_ASK_EVENT_TYPE: &str = "privileged_use_late_ask";

/// The activity line of an admin session in its notice's thread: what the session did, kept
/// current in place.
pub const ACTIVITY_EVENT_TYPE: &str = "privileged_use_activity";

/// Event IDs kept in a notice's metadata (the rest are still in the thread).
pub const MAX_EVENT_IDS: usize = 200;
/// Longest value in metadata (not rendered, but Slack bounds the payload).
pub const MAX_VALUE_CHARS: usize = 256;

/// A value as metadata keeps it: an event ID is compared in this form, too.
pub fn event_key(value: &str) -> String {
    clip(value, MAX_VALUE_CHARS)
}

/// `event_payload` of a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct NoticePayload {
    pub event_id: String,
    pub account: String,
    pub kind: String,
    pub principal: String,
    pub role: String,
    pub source_ip: String,
    /// Unix seconds of the first use (0 if unknown).
    pub event_time: i64,
    pub failed: bool,
    /// How many uses this notice stands for (1 until coalesced).
    pub count: u32,
    /// Unix seconds of the last use coalesced into this notice.
    pub last_time: i64,
    /// Event IDs of this notice (bounded by [`MAX_EVENT_IDS`]; once `count` is larger, the rest
    /// are only in the thread's lines). Written as `[{"id": …}]`: Slack's metadata types allow
    /// arrays of objects, not of strings. Read in both forms.
    #[serde(with = "event_id_list")]
    pub event_ids: Vec<String>,
    pub justified: bool,
    pub escalated: bool,
    /// CloudTrail's `sharedEventID` of the first use: a cross-account call recorded in both
    /// accounts carries the same one.
    pub shared_event_id: String,
    /// The other account's record of that same call, once it joined this notice.
    pub twin_event_id: String,
    /// A person answered without a ticket URL (or a purpose) and was asked for it once.
    pub ticket_asked: bool,
    /// Slack could not be asked who the person is when the notice was posted (a transient
    /// failure, not "no such user"): the ask went to the fallback, and the sweep asks the person
    /// once they can be found.
    pub person_unasked: bool,
    /// The admin sessions this notice stands for (their activity lines join its thread),
    /// bounded by [`MAX_SESSIONS`].
    pub sessions: Vec<SessionRef>,
}

/// Sessions a notice's metadata keeps.
pub const MAX_SESSIONS: usize = 20;

impl NoticePayload {
    /// This notice stands for `session`.
    pub fn has_session(&self, session: &SessionRef) -> bool {
        self.sessions.iter().any(|s| s.is(session))
    }

    /// Adds a session this notice now stands for (the oldest beyond [`MAX_SESSIONS`] go).
    pub fn add_session(&mut self, session: Option<&SessionRef>) {
        if let Some(session) = session {
            if !self.has_session(session) {
                self.sessions.push(session.clone());
                if self.sessions.len() > MAX_SESSIONS {
                    self.sessions.remove(0);
                }
            }
        }
    }

    pub fn holds(&self, event_id: &str) -> bool {
        self.event_id == event_id
            || self.twin_event_id == event_id
            || self.event_ids.iter().any(|id| id == event_id)
    }

    /// `other` is the other account's record of this notice's cross-account call.
    pub fn is_twin_of(&self, other: &NoticePayload) -> bool {
        !self.shared_event_id.is_empty()
            && self.shared_event_id == other.shared_event_id
            && self.account != other.account
            && self.twin_event_id.is_empty()
    }

    /// Some of this notice's event IDs are no longer in its metadata (only in its thread).
    pub fn ids_evicted(&self) -> bool {
        self.count as usize > self.event_ids.len()
    }

    /// Same person, same account, same outcome, same group of kinds (`kind::Group`): what may
    /// share a thread. A kind this version does not know shares only with its own kind.
    pub fn coalesce_key(&self) -> (&str, &str, bool, &str) {
        let group =
            Kind::from_name(&self.kind).map_or(self.kind.as_str(), |k| k.spec().group.as_str());
        (&self.account, &self.principal, self.failed, group)
    }

    pub fn to_metadata(&self) -> Value {
        json!({"event_type": NOTICE_EVENT_TYPE, "event_payload": self})
    }
}

/// Actions an activity line names one by one (the rest are counted together).
pub const MAX_ACTIONS: usize = 12;
/// Resources an activity line names.
pub const MAX_RESOURCES: usize = 5;
/// Event IDs an activity line's metadata keeps (the latest): a redelivery older than these is
/// recognised by the archive's ledger, where there is one.
pub const ACTIVITY_IDS: usize = 100;

/// A resource a session's call named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Named {
    pub name: String,
}

/// How often one action was called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ActionCount {
    pub action: String,
    pub count: u32,
}

/// `event_payload` of an activity line, and the session's state in the archive: what the
/// session did so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ActivityPayload {
    pub session: SessionRef,
    /// Write calls counted.
    pub total: u32,
    /// The actions, most called first.
    pub actions: Vec<ActionCount>,
    /// Calls of actions beyond [`MAX_ACTIONS`].
    pub other_actions: u32,
    /// The first resources named (escaped when shown). Written as `[{"name": …}]`: Slack's
    /// metadata types allow arrays of objects, not of strings.
    pub resources: Vec<Named>,
    pub more_resources: bool,
    /// Calls refused (`AccessDenied`, `UnauthorizedOperation`, …) and other failed calls.
    pub refused: u32,
    pub failed: u32,
    /// Unix seconds of the first and last call.
    pub first: i64,
    pub last: i64,
    /// The latest event IDs counted (see [`ACTIVITY_IDS`]; the archive's state keeps them all).
    #[serde(with = "event_id_list")]
    pub event_ids: Vec<String>,
}

impl ActivityPayload {
    pub fn new(session: SessionRef) -> Self {
        ActivityPayload {
            session,
            ..ActivityPayload::default()
        }
    }

    pub fn holds(&self, event_id: &str) -> bool {
        let key = event_key(event_id);
        self.event_ids.contains(&key)
    }

    /// Counts `call` once: `false` when it was already counted. `keep_ids` bounds the event
    /// IDs kept (the oldest go).
    pub fn add(&mut self, call: &Call, keep_ids: usize) -> bool {
        if self.holds(&call.event_id) {
            return false;
        }
        self.total += 1;
        let action = clip(&call.action, 128);
        let room = self.actions.len() < MAX_ACTIONS;
        match self.actions.iter_mut().find(|a| a.action == action) {
            Some(a) => a.count += 1,
            None if room => self.actions.push(ActionCount { action, count: 1 }),
            None => self.other_actions += 1,
        }
        self.actions
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.action.cmp(&b.action)));
        for resource in &call.resources {
            let resource = Named {
                name: clip(resource, MAX_VALUE_CHARS),
            };
            if self.resources.contains(&resource) {
                continue;
            }
            match self.resources.len() < MAX_RESOURCES {
                true => self.resources.push(resource),
                false => self.more_resources = true,
            }
        }
        match call.error.as_deref() {
            Some(e) if e.contains("AccessDenied") || e.contains("Unauthorized") => {
                self.refused += 1
            }
            Some(_) => self.failed += 1,
            None => {}
        }
        if call.time > 0 {
            self.first = if self.first == 0 {
                call.time
            } else {
                self.first.min(call.time)
            };
            self.last = self.last.max(call.time);
        }
        self.event_ids.push(event_key(&call.event_id));
        if self.event_ids.len() > keep_ids {
            let extra = self.event_ids.len() - keep_ids;
            self.event_ids.drain(..extra);
        }
        true
    }

    /// `iam:CreateUser×1; ec2:TerminateInstances×3` (the export's `actions` column).
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .actions
            .iter()
            .map(|a| format!("{}×{}", a.action, a.count))
            .collect();
        if self.other_actions > 0 {
            parts.push(format!("others×{}", self.other_actions));
        }
        parts.join("; ")
    }

    pub fn to_metadata(&self) -> Value {
        let mut kept = self.clone();
        if kept.event_ids.len() > ACTIVITY_IDS {
            let extra = kept.event_ids.len() - ACTIVITY_IDS;
            kept.event_ids.drain(..extra);
        }
        json!({"event_type": ACTIVITY_EVENT_TYPE, "event_payload": kept})
    }
}

/// `event_payload` of a thread line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LinePayload {
    pub event_id: String,
    pub kind: String,
    pub event_time: i64,
    pub source_ip: String,
    pub role: String,
    /// A further use coalesced into the notice (no mention), rather than the first reply.
    pub repeat: bool,
}

impl LinePayload {
    pub fn to_metadata(&self) -> Value {
        json!({"event_type": LINE_EVENT_TYPE, "event_payload": self})
    }
}

/// `event_payload` of a rolling summary line: how many uses it stood for when last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SummaryPayload {
    pub count: u32,
    pub first_time: i64,
    pub last_time: i64,
}

impl SummaryPayload {
    pub fn to_metadata(&self) -> Value {
        json!({"event_type": SUMMARY_EVENT_TYPE, "event_payload": self})
    }
}

/// `event_ids` as `[{"id": "…"}]` (what Slack's `MessageMetadata` type allows); an older
/// notice's plain array of strings still reads.
mod event_id_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Entry<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Object { id: String },
        Plain(String),
    }

    pub fn serialize<S: Serializer>(ids: &[String], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(|id| Entry {
            id: std::borrow::Cow::Borrowed(id),
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(Vec::<Either>::deserialize(d)?
            .into_iter()
            .map(|e| match e {
                Either::Object { id } | Either::Plain(id) => id,
            })
            .collect())
    }
}

/// The payload of `message`'s metadata if it is of `event_type`.
pub fn payload_of<T: for<'de> Deserialize<'de>>(message: &Value, event_type: &str) -> Option<T> {
    let metadata = &message["metadata"];
    if metadata["event_type"] != event_type {
        return None;
    }
    serde_json::from_value(metadata["event_payload"].clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, action: &str, error: Option<&str>) -> Call {
        Call {
            event_id: id.into(),
            action: action.into(),
            resources: vec![format!("arn:aws:iam::1:user/{id}")],
            error: error.map(str::to_string),
            time: 1_000,
        }
    }

    #[test]
    fn an_activity_counts_each_call_once_and_stays_bounded() {
        let mut a = ActivityPayload::new(SessionRef::default());
        assert!(a.add(&call("e1", "iam:CreateUser", None), 3));
        assert!(
            !a.add(&call("e1", "iam:CreateUser", None), 3),
            "a redelivery"
        );
        assert!(a.add(
            &call(
                "e2",
                "ec2:TerminateInstances",
                Some("Client.UnauthorizedOperation")
            ),
            3
        ));
        assert!(a.add(
            &call("e3", "ec2:TerminateInstances", Some("ThrottlingException")),
            3
        ));
        assert_eq!((a.total, a.refused, a.failed), (3, 1, 1));
        assert_eq!(a.summary(), "ec2:TerminateInstances×2; iam:CreateUser×1");
        for i in 0..20 {
            a.add(&call(&format!("x{i}"), &format!("svc:Action{i}"), None), 3);
        }
        assert_eq!(a.actions.len(), MAX_ACTIONS);
        assert_eq!(a.other_actions, 20 + 2 - MAX_ACTIONS as u32);
        assert_eq!(a.resources.len(), MAX_RESOURCES);
        assert!(a.more_resources);
        assert_eq!(a.event_ids, ["x17", "x18", "x19"], "the latest IDs kept");
        assert!(a
            .summary()
            .ends_with(&format!("others×{}", a.other_actions)));
        // What Slack's metadata takes: no array of plain strings.
        let md = a.to_metadata();
        for (key, value) in md["event_payload"].as_object().unwrap() {
            if let Some(items) = value.as_array() {
                assert!(items.iter().all(Value::is_object), "{key}");
            }
        }
    }

    #[test]
    fn notice_payload_round_trips_and_tolerates_old_shapes() {
        let payload = NoticePayload {
            event_id: "e1".into(),
            count: 2,
            event_ids: vec!["e1".into(), "e2".into()],
            ..Default::default()
        };
        let message = json!({"metadata": payload.to_metadata()});
        let back: NoticePayload = payload_of(&message, NOTICE_EVENT_TYPE).unwrap();
        assert_eq!(back, payload);
        // Slack's types allow arrays of objects only.
        assert_eq!(
            message["metadata"]["event_payload"]["event_ids"],
            json!([{"id": "e1"}, {"id": "e2"}])
        );
        // A notice written with a plain array of strings still reads.
        let strings = json!({"metadata": {"event_type": "privileged_use",
            "event_payload": {"event_id": "e1", "event_ids": ["e1", "e9"]}}});
        let old_form: NoticePayload = payload_of(&strings, NOTICE_EVENT_TYPE).unwrap();
        assert_eq!(old_form.event_ids, vec!["e1".to_string(), "e9".to_string()]);
        assert!(back.holds("e2") && !back.holds("e3"));
        // A notice written before coalescing existed: missing fields take defaults.
        let old = json!({"metadata": {"event_type": "privileged_use", "event_payload": {"event_id": "x"}}});
        let back: NoticePayload = payload_of(&old, NOTICE_EVENT_TYPE).unwrap();
        assert_eq!(back.event_id, "x");
        assert!(payload_of::<NoticePayload>(&old, LINE_EVENT_TYPE).is_none());
    }
}
