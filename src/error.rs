//! One error for every job, and the `errorType` Lambda records for it. A failed invocation is
//! retried by Lambda and then kept by the on-failure destination: nothing is silently dropped.

/// Why an invocation failed. Lambda retries a failed invocation, then hands it to the
/// on-failure destination: nothing is silently dropped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] crate::event::ParseError),
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
    #[error(transparent)]
    Slack(#[from] crate::slack::SlackError),
    #[error(transparent)]
    Archive(#[from] crate::aws::archive::ArchiveError),
    /// A series' state kept changing under this invocation (another writer): retried.
    #[error("the state of series {0} in the archive kept changing while it was written; the invocation fails so Lambda retries it")]
    Conflict(String),
    /// The Justify function could not hand a submission to the notifier.
    #[error(transparent)]
    Handoff(#[from] crate::aws::handoff::HandoffError),
}

impl Error {
    /// The `errorType` Lambda records (and the on-failure destination keeps).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Parse(_) => "privwatch.UnreadableEvent",
            Error::Token(_) => "privwatch.TokenUnavailable",
            Error::Slack(e) if e.is_transient() => "privwatch.SlackUnavailable",
            Error::Slack(_) => "privwatch.SlackRefused",
            Error::Archive(_) => "privwatch.ArchiveUnavailable",
            Error::Conflict(_) => "privwatch.ArchiveConflict",
            Error::Handoff(_) => "privwatch.HandoffFailed",
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

impl Error {
    /// Slack refused the token (it may have been rotated): worth one fresh fetch.
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Slack(e) if e.is_auth())
    }

    /// Slack says the message or thread is gone (deleted).
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Slack(e) if e.is_gone())
    }
}
