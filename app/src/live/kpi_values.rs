//! What KPI tiles show: the latest value per key, and which keys an update changed (they flash).

use super::{session::Delivery, topic_view::TopicView};
use protocol::Item;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiValues {
    values: BTreeMap<String, f64>,
    /// Keys the last update changed (they flash); not kept across reloads.
    #[serde(skip)]
    pub changed: Vec<String>,
}

impl TopicView for KpiValues {
    fn apply(&mut self, delivery: &Delivery) {
        match delivery {
            Delivery::Snapshot { series, .. } => self.replace(series),
            Delivery::Update { series, .. } => self.changed = self.merge(series),
            Delivery::Gap | Delivery::Error { .. } => {}
        }
    }
}

impl KpiValues {
    /// Replaces everything (a snapshot).
    pub fn replace(&mut self, items: &[Item]) {
        self.values.clear();
        self.changed.clear();
        self.merge(items);
    }

    /// Applies an update; returns the keys whose value changed.
    pub fn merge(&mut self, items: &[Item]) -> Vec<String> {
        let mut changed = Vec::new();
        for item in items {
            if let Item::Metric(m) = item
                && protocol::metric_changed(self.values.insert(m.key.clone(), m.value), m.value)
            {
                changed.push(m.key.clone());
            }
        }
        changed
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.values.iter()
    }
}

/// `orders_today` → "Orders today", `createdAt` → "Created at".
pub fn label(key: &str) -> String {
    let mut words = String::with_capacity(key.len() + 4);
    let mut previous_lower = false;
    for c in key.chars() {
        match c {
            '_' | '.' | '-' | ':' => words.push(' '),
            c if c.is_uppercase() && previous_lower => {
                words.push(' ');
                words.extend(c.to_lowercase());
            }
            c => words.push(c),
        }
        previous_lower = c.is_lowercase();
    }
    let mut chars = words.trim().chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Whole numbers with thousands separators ("12,480"), others with one decimal ("2.4").
pub fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    if value.fract() != 0.0 && value.abs() < 1e15 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if value < 0.0 { format!("-{grouped}") } else { grouped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Metric;

    fn m(key: &str, value: f64) -> Item {
        Item::Metric(Metric { key: key.into(), value })
    }

    #[test]
    fn updates_merge_and_report_what_changed() {
        let mut kpis = KpiValues::default();
        kpis.replace(&[m("a", 1.0), m("b", 2.0)]);
        assert_eq!(kpis.merge(&[m("a", 1.0), m("b", 3.0), m("c", 4.0)]), vec!["b".to_owned(), "c".to_owned()]);
        let all: Vec<(String, f64)> = kpis.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(all, vec![("a".into(), 1.0), ("b".into(), 3.0), ("c".into(), 4.0)]);
        kpis.replace(&[m("z", 0.0)]);
        assert_eq!(kpis.iter().count(), 1);
    }

    #[test]
    fn a_tile_flashes_by_the_same_rule_as_the_stream_filters() {
        let mut kpis = KpiValues::default();
        kpis.replace(&[m("nan", f64::NAN), m("zero", 0.0)]);
        // The SSE stream sends neither a NaN that stays NaN nor an unchanged value; a tile must not
        // flash for them either, and must for 0.0 → −0.0, which the stream sends.
        assert_eq!(kpis.merge(&[m("nan", f64::NAN), m("zero", -0.0)]), vec!["zero".to_owned()]);
    }

    #[test]
    fn labels_and_values_read_naturally() {
        assert_eq!(label("orders_today"), "Orders today");
        assert_eq!(label("revenue.eur"), "Revenue eur");
        assert_eq!(label("createdAt"), "Created at");
        assert_eq!(label("URL"), "URL");
        assert_eq!(format_value(12480.0), "12,480");
        assert_eq!(format_value(1_234_567.0), "1,234,567");
        assert_eq!(format_value(-1000.0), "-1,000");
        assert_eq!(format_value(999.0), "999");
        assert_eq!(format_value(2.43), "2.4");
        assert_eq!(format_value(f64::NAN), "—");
    }
}
