//! What KPI tiles show: the latest value per key, and which keys an update changed (they flash).

use crate::protocol::Item;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiValues(BTreeMap<String, f64>);

impl KpiValues {
    /// Replaces everything (a snapshot).
    pub fn replace(&mut self, items: &[Item]) {
        self.0.clear();
        self.merge(items);
    }

    /// Applies an update; returns the keys whose value changed.
    pub fn merge(&mut self, items: &[Item]) -> Vec<String> {
        let mut changed = Vec::new();
        for item in items {
            if let Item::Metric(m) = item
                && self.0.insert(m.key.clone(), m.value) != Some(m.value)
            {
                changed.push(m.key.clone());
            }
        }
        changed
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.0.iter()
    }
}

/// `orders_today` → "Orders today".
pub fn label(key: &str) -> String {
    let words = key.replace(['_', '.', '-', ':'], " ");
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
    use crate::protocol::Metric;

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
    fn labels_and_values_read_naturally() {
        assert_eq!(label("orders_today"), "Orders today");
        assert_eq!(label("revenue.eur"), "Revenue eur");
        assert_eq!(format_value(12480.0), "12,480");
        assert_eq!(format_value(1_234_567.0), "1,234,567");
        assert_eq!(format_value(-1000.0), "-1,000");
        assert_eq!(format_value(999.0), "999");
        assert_eq!(format_value(2.43), "2.4");
        assert_eq!(format_value(f64::NAN), "—");
    }
}
