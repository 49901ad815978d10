//! Where the trust helpers the commands once passed through several times went:
//! the pin types are in [`super::anchor`], opening, anchoring and updating a
//! repository is [`super::repository::Repository`]. Re-exported here for callers
//! outside `ops`.

pub use super::anchor::Pin;
pub use super::repository::{TrustedUpdater, open_artifact_store, open_store};
