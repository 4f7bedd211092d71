//! privwatch: every use of the AWS root user or an admin role, posted to Slack with a threaded
//! request for its justification — and the chase until the thread holds a purpose and a ticket.
//!
//! # The map
//!
//! One invocation goes one way, down:
//!
//! ```text
//! main, cli ──► handler ──► notify/ · chase/ · coverage · audit · smoke ──► channel/ ──► app ──► slack/ · aws/
//!                               │
//!                               └──► message/ (pure) ──► event/ (pure)
//! ```
//!
//! - [`event`] (pure): an EventBridge payload → what it records: its kind, the CloudTrail fields,
//!   the [`event::PrivilegedUse`].
//! - [`message`] (pure): every word, in `en` and `ja`, and every Block Kit shape and metadata.
//! - [`handler`]: routes an invocation to its job; [`handler::handle`] is what the Lambda runtime
//!   (`main.rs`) and the tests call.
//! - [`notify`]: a use → its notice and ask, exactly once; a long series counted in the archive.
//! - [`chase`]: the sweep (ask again, escalate, mark justified) and the Justify button.
//! - [`coverage`] (organization hub: who is heard), [`audit`] (the export for an auditor),
//!   [`smoke`] (`make smoke`'s test notice).
//! - [`channel`]: the Slack channel as privwatch's store, written once: our notices, a reply of
//!   one type in a thread, a whole thread, write once, the flags.
//! - [`app`]: [`App`] (built once) and its [`app::Session`] (token, bot user, channel, deadline —
//!   one token refresh for every job); [`error`]: the one [`Error`].
//! - [`slack`]: the Web API client, knowing nothing of privwatch; [`aws`]: the archive, the
//!   organization, the hand-over to the notifier; [`config`], [`token`]; [`encoding`] (form
//!   decoding, under everything).
//!
//! `scripts/modgraph.py` (in `make test`) fails when a module imports one above it, or one that
//! imports it back.

pub mod admins;
pub mod app;
pub mod audit;
pub mod aws;
pub mod channel;
pub mod chase;
pub mod config;
pub mod coverage;
pub mod encoding;
pub mod error;
pub mod event;
pub mod handler;
pub mod message;
pub mod notify;
pub mod slack;
pub mod smoke;
pub mod token;

pub use app::App;
pub use error::Error;
pub use handler::{handle, Outcome};
