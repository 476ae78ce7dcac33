//! What a widget keeps of its topic: a [`TopicView`] folds deliveries into the state it draws.
//!
//! Views are plain data, tested on the host, and serialisable: the page saves them with the
//! session's positions when it unloads, so a refreshed page shows what the old one showed and
//! resumes from there.

use super::session::Delivery;
use serde::{Serialize, de::DeserializeOwned};

pub trait TopicView: Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Applies a snapshot (replace everything) or an update (the next change, in order). Gaps and
    /// errors are announced on the widget; views ignore them.
    fn apply(&mut self, delivery: &Delivery);
}
