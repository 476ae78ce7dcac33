//! What a page leaves behind for the next one in the same tab (sessionStorage): each widget's topic,
//! its last applied position and its view. The next page shows the saved views at once and
//! resubscribes from the saved positions, so a refresh loses nothing and repeats nothing.

use super::session::WidgetPosition;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The sessionStorage key; the version changes whenever the shape does.
pub const STORAGE_KEY: &str = "livedash.session.v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedWidget {
    pub topic: String,
    pub position: Option<WidgetPosition>,
    pub view: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedSession {
    /// Whose it is (`tenant/e-mail`): another user in the same tab never gets it.
    pub user: String,
    pub widgets: BTreeMap<String, SavedWidget>,
}

impl SavedSession {
    /// Reads what an earlier page saved; anything unreadable counts as nothing.
    pub fn parse(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("saved sessions serialise")
    }

    /// Takes the saved state of `widget` if `user` saved it and it followed the same topic (a
    /// widget whose topic changed starts afresh). Another user's session is dropped whole.
    pub fn take(&mut self, user: &str, widget: &str, topic: &str) -> Option<SavedWidget> {
        if self.user != user {
            self.widgets.clear();
            return None;
        }
        self.widgets.remove(widget).filter(|w| w.topic == topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_widget_comes_back_once_and_only_for_its_topic() {
        let mut saved = SavedSession { user: "acme/ada@acme.test".into(), ..Default::default() };
        let position = WidgetPosition { epoch: "e".into(), offset: 4, resume_token: "e.4".into() };
        saved.widgets.insert(
            "w1".into(),
            SavedWidget { topic: "a/b".into(), position: Some(position.clone()), view: serde_json::json!([1]) },
        );
        saved.widgets.insert("w2".into(), SavedWidget { topic: "a/b".into(), position: None, view: Value::Null });
        let mut restored = SavedSession::parse(&saved.to_json());
        let ada = "acme/ada@acme.test";
        assert_eq!(restored.take(ada, "w1", "a/b").unwrap().position, Some(position));
        assert!(restored.take(ada, "w1", "a/b").is_none(), "taken once");
        assert!(restored.take(ada, "w2", "c/d").is_none(), "another topic starts afresh");

        let mut other = SavedSession::parse(&saved.to_json());
        assert!(other.take("globex/bob@globex.test", "w2", "a/b").is_none(), "never another user's");
        assert!(other.take(ada, "w2", "a/b").is_none(), "dropped whole once another user looked");
        assert_eq!(SavedSession::parse("{not json"), SavedSession::default());
    }
}
