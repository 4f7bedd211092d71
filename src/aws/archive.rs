//! The audit record that outlives Slack: with `ARCHIVE_BUCKET` set, each privileged use is
//! written to S3 as it is delivered (`uses/<event id>.json`, the CloudTrail record with it), and
//! each justification as the sweep finds it (`justifications/<event id>.json`: who, the purpose,
//! the ticket URL, when, and every event ID of its notice).
//!
//! Append-only: every object is a conditional create (`If-None-Match: *`), keyed by the
//! CloudTrail event ID, so a retry rewrites nothing — "already there" is success. A write that
//! fails fails the invocation like a Slack failure; the retry completes only what is missing.

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const USES: &str = "uses/";
const JUSTIFICATIONS: &str = "justifications/";
/// The working state of a series of uses by one person (`notify::series`): rewritten as the series grows.
/// The S3 prefix of the series states (named `threads/` before series had their name; kept so
/// an existing archive is read on).
const SERIES: &str = "threads/";
/// An empty object per series whose Slack notice is behind its state (`notify::series`).
const BEHIND: &str = "behind/";
/// One record per call of an admin session (`notify::activity`): a record, like a use.
const CALLS: &str = "activity/";
/// The working state of an admin session's activity line (`notify::activity`).
const SESSIONS: &str = "sessions/";

/// The condition a write is made on.
enum Only<'a> {
    /// Only if no object is there (a create).
    IfAbsent,
    /// Only if the object is still the version read.
    IfMatch(&'a str),
    Always,
}

/// Whether a conditional create wrote the object or found it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyThere,
}

#[derive(Debug, thiserror::Error)]
#[error("the S3 archive ({bucket}) could not be {action}: {detail}; the invocation fails so Lambda retries it")]
pub struct ArchiveError {
    bucket: String,
    action: &'static str,
    detail: String,
}

/// One privileged use as archived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseRecord {
    pub event_id: String,
    pub kind: String,
    pub account: String,
    pub principal: String,
    pub role: String,
    pub source_ip: String,
    /// RFC 3339.
    pub time: String,
    pub region: String,
    /// Unix seconds when privwatch archived it.
    pub archived_at: i64,
    /// The CloudTrail record (`detail`), as EventBridge delivered it.
    pub record: Value,
}

/// One call of an admin session as archived: what it did (never a parameter's value), and the
/// session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub event_id: String,
    /// The session's ARN and creation time (Unix seconds).
    pub session: String,
    pub session_created: i64,
    pub account: String,
    pub action: String,
    pub resources: Vec<String>,
    pub error: Option<String>,
    /// RFC 3339.
    pub time: String,
    pub archived_at: i64,
}

/// One justification as archived (for every event ID of its notice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JustificationRecord {
    pub event_ids: Vec<String>,
    pub replied_by: Vec<String>,
    pub purpose: String,
    pub ticket_url: String,
    /// Unix seconds when the sweep found it.
    pub justified_at: i64,
    pub channel: String,
    pub notice_ts: String,
}

pub struct Archive {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Days each record (a use, a justification) is kept under Object Lock in compliance mode.
    lock_days: Option<u32>,
}

impl Archive {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        Archive {
            client,
            bucket: bucket.to_string(),
            lock_days: None,
        }
    }

    /// Records (uses, justifications) are written under Object Lock in compliance mode for
    /// `days` — each object with its own retention, not the bucket's default. A default
    /// retention would lock every version of the working state too (`threads/`, `behind/`,
    /// rewritten with every use of a long series), and keep each for the whole period.
    pub fn locking_records_for(mut self, days: Option<u32>) -> Self {
        self.lock_days = days;
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Records a use once: [`Created::AlreadyThere`] says an earlier attempt recorded it.
    pub async fn put_use(&self, record: &UseRecord) -> Result<Created, ArchiveError> {
        self.create(
            &format!("{USES}{}.json", key_part(&record.event_id)),
            record,
        )
        .await
    }

    /// Records an admin session's call once ([`Created::AlreadyThere`]: a retry).
    pub async fn put_call(&self, record: &CallRecord) -> Result<Created, ArchiveError> {
        self.create(
            &format!("{CALLS}{}.json", key_part(&record.event_id)),
            record,
        )
        .await
    }

    /// Every call archived.
    pub async fn read_calls(&self) -> Result<Vec<CallRecord>, ArchiveError> {
        let mut calls = Vec::new();
        for key in self.keys(CALLS).await? {
            let Some((bytes, _)) = self.get(&key).await? else {
                continue;
            };
            calls.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| self.error("read", format!("{key}: {e}")))?,
            );
        }
        Ok(calls)
    }

    /// An admin session's state (`sessions/<key>.json`) and its ETag, if there is one.
    pub async fn get_session<T: for<'de> Deserialize<'de>>(
        &self,
        session: &str,
    ) -> Result<Option<(T, String)>, ArchiveError> {
        self.get_state(&format!("{SESSIONS}{session}.json")).await
    }

    /// Writes an admin session's state if it is still the version read (`None`: if there is none
    /// yet). `Ok(None)`: someone else wrote it meanwhile.
    pub async fn put_session<T: Serialize>(
        &self,
        session: &str,
        state: &T,
        etag: Option<&str>,
    ) -> Result<Option<String>, ArchiveError> {
        self.put_state(&format!("{SESSIONS}{session}.json"), state, etag)
            .await
    }

    /// A person's series state and its ETag, if there is one.
    pub async fn get_series<T: for<'de> Deserialize<'de>>(
        &self,
        series: &str,
    ) -> Result<Option<(T, String)>, ArchiveError> {
        self.get_state(&format!("{SERIES}{series}.json")).await
    }

    /// Writes a person's series state if it is still the version read (`etag`; `None`: if there is
    /// none yet). `Ok(None)`: someone else wrote it meanwhile (read it again).
    pub async fn put_series<T: Serialize>(
        &self,
        series: &str,
        state: &T,
        etag: Option<&str>,
    ) -> Result<Option<String>, ArchiveError> {
        self.put_state(&format!("{SERIES}{series}.json"), state, etag)
            .await
    }

    /// A working state (a series', a session's) and its ETag, if there is one.
    async fn get_state<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<(T, String)>, ArchiveError> {
        let Some((bytes, etag)) = self.get(key).await? else {
            return Ok(None);
        };
        let state = serde_json::from_slice(&bytes)
            .map_err(|e| self.error("read", format!("{key}: {e}")))?;
        Ok(Some((state, etag)))
    }

    /// Writes a working state only if it is still the version read (`etag`), or only if there is
    /// none yet (`None`).
    async fn put_state<T: Serialize>(
        &self,
        key: &str,
        state: &T,
        etag: Option<&str>,
    ) -> Result<Option<String>, ArchiveError> {
        let body = serde_json::to_vec(state).map_err(|e| self.error("written", e))?;
        let only = match etag {
            Some(etag) => Only::IfMatch(etag),
            None => Only::IfAbsent,
        };
        self.put(key, body, only).await
    }

    /// Keeps a series that left its person's state (`threads/<key>/<notice ts>.json`).
    pub async fn put_retired<T: Serialize>(
        &self,
        series: &str,
        notice_ts: &str,
        state: &T,
    ) -> Result<(), ArchiveError> {
        let body = serde_json::to_vec(state).map_err(|e| self.error("written", e))?;
        let key = format!("{SERIES}{series}/{}.json", key_part(notice_ts));
        self.put(&key, body, Only::Always).await.map(|_| ())
    }

    /// The first retired series of a person that `wanted` accepts.
    pub async fn retired_holder<T: for<'de> Deserialize<'de>>(
        &self,
        series: &str,
        wanted: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, ArchiveError> {
        for key in self.keys(&format!("{SERIES}{series}/")).await? {
            let Some((bytes, _)) = self.get(&key).await? else {
                continue;
            };
            let state: T = serde_json::from_slice(&bytes)
                .map_err(|e| self.error("read", format!("{key}: {e}")))?;
            if wanted(&state) {
                return Ok(Some(state));
            }
        }
        Ok(None)
    }

    /// Marks a series' notice as behind its state (found by the scheduled catch-up).
    pub async fn mark_behind(&self, series: &str) -> Result<(), ArchiveError> {
        self.put(&format!("{BEHIND}{series}"), Vec::new(), Only::Always)
            .await
            .map(|_| ())
    }

    pub async fn clear_behind(&self, series: &str) -> Result<(), ArchiveError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(format!("{BEHIND}{series}"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("written", crate::aws::error_chain(&e)))
    }

    /// The series marked as behind.
    pub async fn behind(&self) -> Result<Vec<String>, ArchiveError> {
        Ok(self
            .keys(BEHIND)
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(BEHIND).map(str::to_string))
            .collect())
    }

    /// An object's bytes and ETag (`None`: there is no such key).
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, ArchiveError> {
        let got = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(got) => got,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.error("read", crate::aws::error_chain(&e))),
        };
        let etag = got.e_tag().unwrap_or_default().to_string();
        let bytes = got
            .body
            .collect()
            .await
            .map_err(|e| self.error("read", e))?
            .into_bytes();
        Ok(Some((bytes.to_vec(), etag)))
    }

    /// Every key under `prefix`, page by page.
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("listed", crate::aws::error_chain(&e)))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    pub async fn put_justification(
        &self,
        first_event_id: &str,
        record: &JustificationRecord,
    ) -> Result<(), ArchiveError> {
        self.create(
            &format!("{JUSTIFICATIONS}{}.json", key_part(first_event_id)),
            record,
        )
        .await
        .map(|_| ())
    }

    /// A conditional create of a record: an object already under `key` (a retry) is left as it
    /// is. Records alone are locked (`ARCHIVE_LOCK_DAYS`).
    async fn create<T: Serialize>(&self, key: &str, value: &T) -> Result<Created, ArchiveError> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| self.error("written", e))?;
        let lock = self.lock_days.map(|days| {
            std::time::SystemTime::now() + std::time::Duration::from_secs(u64::from(days) * 86_400)
        });
        Ok(
            match self.put_with(key, body, Only::IfAbsent, lock).await? {
                Some(_) => Created::New,
                None => Created::AlreadyThere,
            },
        )
    }

    /// One `PutObject`: the new ETag, or `None` when S3 refused it for its condition (412).
    ///
    /// "If a conflicting operation occurs during the upload S3 returns a 409
    /// ConditionalRequestConflict response. On a 409 failure you should retry the upload"
    /// (PutObject, Amazon S3 API Reference): two writers racing on one key (a retry beside a
    /// slow first attempt) is ordinary, not a failure. A conditional create is sent again (its
    /// condition still decides); a write conditioned on an ETag answers `None`, so its caller
    /// reads the object again and retries with the ETag it finds, as the same page says.
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        only: Only<'_>,
    ) -> Result<Option<String>, ArchiveError> {
        self.put_with(key, body, only, None).await
    }

    /// [`Archive::put`], the object locked in compliance mode until `lock_until` if given.
    async fn put_with(
        &self,
        key: &str,
        body: Vec<u8>,
        only: Only<'_>,
        lock_until: Option<std::time::SystemTime>,
    ) -> Result<Option<String>, ArchiveError> {
        let mut backoff = CONFLICT_BACKOFF;
        for attempt in 1.. {
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type("application/json")
                .body(ByteStream::from(body.clone()));
            let put = match lock_until {
                Some(until) => put
                    .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
                    .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from(until)),
                None => put,
            };
            let put = match only {
                Only::IfAbsent => put.if_none_match("*"),
                Only::IfMatch(etag) => put.if_match(etag),
                Only::Always => put,
            };
            match put.send().await {
                Ok(out) => return Ok(Some(out.e_tag().unwrap_or_default().to_string())),
                Err(e) if status(&e) == Some(412) => return Ok(None),
                Err(e) if status(&e) == Some(409) => match only {
                    Only::IfMatch(_) => return Ok(None),
                    Only::IfAbsent | Only::Always if attempt < CONFLICT_ATTEMPTS => {
                        tracing::info!(
                            key,
                            attempt,
                            "S3 answered 409 ConditionalRequestConflict: writing again"
                        );
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                    Only::IfAbsent | Only::Always => {
                        return Err(self.error("written", crate::aws::error_chain(&e)))
                    }
                },
                Err(e) => return Err(self.error("written", crate::aws::error_chain(&e))),
            }
        }
        unreachable!("the loop returns by its last attempt")
    }

    /// Every use and every justification in the archive.
    pub async fn read_all(
        &self,
    ) -> Result<(Vec<UseRecord>, Vec<JustificationRecord>), ArchiveError> {
        let mut uses = Vec::new();
        let mut justifications = Vec::new();
        for (prefix, is_use) in [(USES, true), (JUSTIFICATIONS, false)] {
            for key in self.keys(prefix).await? {
                let Some((bytes, _)) = self.get(&key).await? else {
                    continue;
                };
                let parsed = if is_use {
                    serde_json::from_slice(&bytes).map(|u| uses.push(u))
                } else {
                    serde_json::from_slice(&bytes).map(|j| justifications.push(j))
                };
                parsed.map_err(|e| self.error("read", format!("{key}: {e}")))?;
            }
        }
        Ok((uses, justifications))
    }

    fn error(&self, action: &'static str, detail: impl std::fmt::Display) -> ArchiveError {
        ArchiveError {
            bucket: self.bucket.clone(),
            action,
            detail: detail.to_string(),
        }
    }
}

/// A CloudTrail event ID as a key part: the characters real IDs use kept, anything else
/// percent-encoded (an untrusted ID can neither leave the prefix nor collide with another).
pub fn key_part(event_id: &str) -> String {
    let mut out = String::with_capacity(event_id.len());
    for b in event_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How often a write that met a concurrent one (409) is sent, and the first pause between.
const CONFLICT_ATTEMPTS: u32 = 5;
const CONFLICT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// The HTTP status S3 answered a `PutObject` with: 412 for a condition that does not hold, 409
/// for a conditional write that met a concurrent one.
fn status(
    e: &aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::put_object::PutObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_make_safe_distinct_keys() {
        assert_eq!(
            key_part("3fcfb586-8e23-4c9f-a1ce-1b7c1a1c2b33"),
            "3fcfb586-8e23-4c9f-a1ce-1b7c1a1c2b33"
        );
        assert_eq!(key_part("../x"), "%2E%2E%2Fx");
        assert_ne!(key_part("a/b"), key_part("a_b"));
        assert_ne!(key_part("a%2Fb"), key_part("a/b"));
    }
}
