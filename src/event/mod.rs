//! PURE. An EventBridge payload → what it records: its kind (one declaration per kind in
//! [`kind`]), the patterns the deployed rules match with ([`pattern`]), the CloudTrail record's
//! fields ([`cloudtrail`]) and the [`PrivilegedUse`] privwatch reports ([`classify`]).
//! Nothing here touches the network; everything is tested with plain fixtures.

mod classify;
pub mod cloudtrail;
pub mod kind;
pub mod pattern;
pub mod policy;
pub mod session;

pub use classify::*;
