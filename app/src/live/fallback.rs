//! Pure helpers of the fallback transports: the query parameters that carry a client's positions
//! to the SSE stream and the polls (see docs/protocol.md, "Fallback transports"), and how often to
//! poll.

use std::time::Duration;

/// `positions=w1:token,w2:token`: where each widget stands, as the WebSocket would resubscribe it.
pub fn positions_query<'a>(tokens: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let list: Vec<String> = tokens.map(|(widget, token)| format!("{widget}:{token}")).collect();
    if list.is_empty() { Vec::new() } else { vec![("positions".into(), list.join(","))] }
}

/// Only `widgets`, from `position` (one widget's resume token) when given, else from a snapshot.
pub fn widget_query(widgets: &[String], position: Option<(&str, &str)>) -> Vec<(String, String)> {
    let mut query = vec![("widgets".to_owned(), widgets.join(","))];
    query.extend(positions_query(position.into_iter()));
    query
}

/// The default interval, or the shortest widget interval when one asks for sooner.
pub fn poll_interval(default: Duration, widget_intervals: impl Iterator<Item = u32>) -> Duration {
    widget_intervals.map(|secs| Duration::from_secs(u64::from(secs.max(1)))).fold(default, Duration::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_widgets_become_query_parameters() {
        let q = positions_query([("w1", "ab.3"), ("notification-center", "cd.9")].into_iter());
        assert_eq!(q, [("positions".to_owned(), "w1:ab.3,notification-center:cd.9".to_owned())]);
        assert!(positions_query(std::iter::empty()).is_empty());
        let w = widget_query(&["w2".to_owned()], Some(("w2", "ef.1")));
        assert_eq!(w, [("widgets".to_owned(), "w2".to_owned()), ("positions".to_owned(), "w2:ef.1".to_owned())]);
    }

    #[test]
    fn polling_follows_the_shortest_widget_interval_under_the_default() {
        let thirty = Duration::from_secs(30);
        assert_eq!(poll_interval(thirty, [].into_iter()), thirty);
        assert_eq!(poll_interval(thirty, [60, 5, 15].into_iter()), Duration::from_secs(5));
        assert_eq!(poll_interval(thirty, [60].into_iter()), thirty, "never longer than the default");
    }
}
