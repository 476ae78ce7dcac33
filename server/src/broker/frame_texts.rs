//! One message's frame texts, glued once per widget id and set of hidden fields and shared by
//! reference count. Every viewer of one dashboard subscribes with the same widget id, so a topic
//! followed by thousands of sockets usually needs a handful of texts, not one each: the writers
//! then send the same bytes, and no subscriber costs an allocation or a copy of the message.

use super::encode;
use crate::{outbox::update_text, permissions::mask::Hidden};
use axum::extract::ws::Utf8Bytes;
use std::{collections::HashMap, sync::Arc};

pub(super) struct FrameTexts<'a> {
    body: &'a Arc<str>,
    /// The body without each set of hidden fields met so far (a subscriber's index is its place
    /// here plus one; 0 is the whole body).
    masked: Vec<(&'a Hidden, String)>,
    texts: HashMap<(&'a str, usize), Utf8Bytes>,
}

impl<'a> FrameTexts<'a> {
    pub(super) fn new(body: &'a Arc<str>) -> Self {
        Self { body, masked: Vec::new(), texts: HashMap::new() }
    }

    /// The frame of a subscriber with this `{"widgetId":…,` prefix that may not see `hidden`.
    pub(super) fn text(&mut self, prefix: &'a str, hidden: Option<&'a Hidden>) -> Utf8Bytes {
        let index = match hidden {
            None => 0,
            Some(hidden) => match self.masked.iter().position(|(seen, _)| *seen == hidden) {
                Some(at) => at + 1,
                None => {
                    self.masked.push((hidden, encode::masked_body(self.body, hidden)));
                    self.masked.len()
                }
            },
        };
        let Self { body, masked, texts } = self;
        texts
            .entry((prefix, index))
            .or_insert_with(|| {
                let body = if index == 0 { &***body } else { masked[index - 1].1.as_str() };
                update_text(prefix, body).into()
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_text_per_widget_id_and_hidden_fields_and_each_exactly_prefix_plus_body() {
        let body: Arc<str> = r#""ts":1,"series":[],"meta":{}}"#.into();
        let mut texts = FrameTexts::new(&body);
        let a1 = texts.text(r#"{"widgetId":"a","#, None);
        let a2 = texts.text(r#"{"widgetId":"a","#, None);
        let b = texts.text(r#"{"widgetId":"b","#, None);
        assert_eq!(&*a1, r#"{"widgetId":"a","ts":1,"series":[],"meta":{}}"#);
        assert_eq!(&*b, r#"{"widgetId":"b","ts":1,"series":[],"meta":{}}"#);
        // Shared, not copied: the same bytes in memory.
        assert_eq!(a1.as_ptr(), a2.as_ptr());
        assert_ne!(a1.as_ptr(), b.as_ptr());
    }
}
