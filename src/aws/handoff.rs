//! I/O. Hands a checked Justify submission to the notifier before Slack's three seconds are up: an
//! asynchronous Lambda invoke (Lambda queues it, even while the notifier is busy; a failure is
//! retried twice and then kept in the failure queue). It carries a JSON value and knows nothing
//! of what is in it.

use serde_json::Value;
use std::sync::Mutex;
use tokio::time::Instant;

/// Where a checked submission goes before Slack gets its answer.
pub enum Handoff {
    /// Nowhere: the same invocation completes it (one function plays both parts:
    /// `cargo lambda watch`, `make demo`).
    Inline,
    /// An asynchronous invoke of the notifier (`NOTIFIER_FUNCTION`).
    Lambda {
        client: aws_sdk_lambda::Client,
        function: String,
    },
    /// Kept for the caller to deliver, as Lambda would (tests).
    Queue(Mutex<Vec<Value>>),
}

/// The notifier could not be handed the submission.
#[derive(Debug, thiserror::Error)]
#[error("the justification could not be handed to the notifier function {function}: {detail}")]
pub struct HandoffError {
    pub function: String,
    pub detail: String,
}

impl Handoff {
    /// Hands `payload` over; `Ok(false)` when this is [`Handoff::Inline`] and the caller must
    /// complete it itself.
    pub async fn send(&self, payload: &Value, deadline: Instant) -> Result<bool, HandoffError> {
        match self {
            Handoff::Inline => Ok(false),
            Handoff::Queue(queue) => {
                queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(payload.clone());
                Ok(true)
            }
            Handoff::Lambda { client, function } => {
                let failed = |detail: String| HandoffError {
                    function: function.clone(),
                    detail,
                };
                let body = serde_json::to_vec(payload).map_err(|e| failed(e.to_string()))?;
                let invoke = client
                    .invoke()
                    .function_name(function)
                    .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                    .payload(aws_sdk_lambda::primitives::Blob::new(body))
                    .send();
                match tokio::time::timeout_at(deadline, invoke).await {
                    Ok(Ok(_)) => Ok(true),
                    Ok(Err(e)) => Err(failed(crate::aws::error_chain(&e))),
                    Err(_) => Err(failed("no answer within Slack's three seconds".into())),
                }
            }
        }
    }

    /// Tests: the payloads handed over so far, taken.
    pub fn take(&self) -> Vec<Value> {
        match self {
            Handoff::Queue(queue) => {
                std::mem::take(&mut *queue.lock().unwrap_or_else(|e| e.into_inner()))
            }
            Handoff::Inline | Handoff::Lambda { .. } => Vec::new(),
        }
    }
}
