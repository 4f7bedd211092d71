//! I/O. AWS beyond the token: the S3 archive ([`archive`]), the organization ([`org`]) and the
//! hand-over of a Justify submission to the notifier ([`handoff`]).

pub mod archive;
pub mod handoff;
pub mod org;

/// An error with its sources, as one line (the AWS SDK's errors say what went wrong only there).
pub fn error_chain<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
