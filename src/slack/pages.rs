//! A walk through the pages of a history or replies listing, following Slack's cursor, bounded in
//! pages and by the caller's deadline.

use super::{FoundMessage, SlackClient, SlackError};
use tokio::time::Instant;

/// A walk through the pages of a history or replies listing, following Slack's cursor.
pub struct Pages<'a> {
    client: &'a SlackClient,
    token: &'a str,
    method: &'static str,
    query: Vec<(&'static str, String)>,
    cursor: Option<String>,
    seen: std::collections::HashSet<String>,
    pages_left: u32,
    done: bool,
    stopped: Option<String>,
}

impl<'a> Pages<'a> {
    pub(super) fn new(
        client: &'a SlackClient,
        token: &'a str,
        method: &'static str,
        mut query: Vec<(&'static str, String)>,
        max_pages: u32,
    ) -> Self {
        query.push(("include_all_metadata", "true".to_string()));
        query.push(("limit", "200".to_string()));
        Pages {
            client,
            token,
            method,
            query,
            cursor: None,
            seen: std::collections::HashSet::new(),
            pages_left: max_pages,
            done: false,
            stopped: None,
        }
    }

    /// Why the walk ended before the listing's end (page bound, a cursor Slack sent twice), if
    /// it did.
    pub fn stopped_early(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// The walk reached the end of the listing (so what it did not find is not there).
    pub fn require_complete(&self) -> Result<(), SlackError> {
        match &self.stopped {
            None => Ok(()),
            Some(reason) => Err(SlackError::Incomplete {
                method: self.method,
                reason: reason.clone(),
            }),
        }
    }

    /// The next page, or `None` after the last one (or the page bound).
    pub async fn next(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Vec<FoundMessage>>, SlackError> {
        if self.done {
            return Ok(None);
        }
        if self.pages_left == 0 {
            self.done = true;
            self.stopped = Some("page bound reached".into());
            return Ok(None);
        }
        self.pages_left -= 1;
        let mut query = self.query.clone();
        if let Some(cursor) = self.cursor.take() {
            query.push(("cursor", cursor));
        }
        let (messages, next) = self
            .client
            .page(self.method, self.token, &query, deadline)
            .await?;
        match next {
            // A cursor Slack already sent would walk the same pages again, for ever.
            Some(next) if !self.seen.insert(next.clone()) => {
                tracing::warn!(
                    method = self.method,
                    "Slack sent a paging cursor a second time; stopping the walk"
                );
                self.done = true;
                self.stopped = Some("Slack sent the same cursor twice".into());
            }
            Some(next) => self.cursor = Some(next),
            None => self.done = true,
        }
        Ok(Some(messages))
    }

    /// The first message, page by page, that `wanted` accepts. `None` only after the whole
    /// listing was read: a walk that stopped early is [`SlackError::Incomplete`], not "absent".
    pub async fn find(
        mut self,
        deadline: Instant,
        wanted: impl Fn(&FoundMessage) -> bool,
    ) -> Result<Option<FoundMessage>, SlackError> {
        while let Some(messages) = self.next(deadline).await? {
            if let Some(found) = messages.into_iter().find(|m| wanted(m)) {
                return Ok(Some(found));
            }
        }
        self.require_complete()?;
        Ok(None)
    }
}
