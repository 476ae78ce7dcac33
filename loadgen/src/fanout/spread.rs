//! Repeated runs summed up, and the regression check: pure, so the host tests check it.
//!
//! One run's CPU a delivery moves by a third on this kind of virtual machine, so a single figure
//! proves nothing. Each figure is given as the median of the rounds with its range, and the check
//! compares livedash with the axum baseline *measured in the same round* (one right after the
//! other): what slows the machine slows both, and their ratio moves far less than either figure.

/// The median and range of one figure over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Self { median, min: sorted[0], max: sorted[n - 1] })
    }

    /// `5.3 (4.9–5.6)`, or `5.3` for a single run.
    pub fn show(&self, decimals: usize) -> String {
        if self.min == self.max {
            return format!("{:.*}", decimals, self.median);
        }
        format!("{:.*} ({:.*}–{:.*})", decimals, self.median, decimals, self.min, decimals, self.max)
    }
}

/// One line of the budget file: at this load, livedash's CPU a delivery may be at most `ratio`
/// times the axum baseline's (the median over the rounds), give or take `tolerance` (a fraction:
/// the noise this ratio showed when the budget was set). Against an earlier build of livedash
/// itself the ratio is 1.0, with the same tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub load: String,
    pub ratio: f64,
    pub tolerance: f64,
}

/// Reads `load ratio tolerance` lines; `#` starts a comment.
pub fn parse_budgets(text: &str) -> Result<Vec<Budget>, String> {
    let mut budgets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [load, ratio, tolerance] = fields[..] else {
            return Err(format!("line {}: expected `LOAD RATIO TOLERANCE`, got {line:?}", n + 1));
        };
        let number = |s: &str| s.parse::<f64>().map_err(|_| format!("line {}: {s:?} is not a number", n + 1));
        budgets.push(Budget { load: load.to_owned(), ratio: number(ratio)?, tolerance: number(tolerance)? });
    }
    Ok(budgets)
}

/// What the check found for one budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub load: String,
    /// What livedash was measured against (`axum broadcast`, `livedash before`).
    pub against: String,
    /// The median over the rounds of livedash's CPU a delivery over the other's in that round.
    pub ratio: Option<Spread>,
    pub budget: f64,
    pub limit: f64,
}

impl Verdict {
    pub fn pass(&self) -> bool {
        self.ratio.is_some_and(|r| r.median <= self.limit)
    }

    pub fn line(&self) -> String {
        let verdict = if self.pass() { "PASS" } else { "FAIL" };
        match &self.ratio {
            Some(ratio) => format!(
                "{verdict} {}: livedash / {} CPU a delivery {} (budget {:.2}, failing above {:.2})",
                self.load,
                self.against,
                ratio.show(2),
                self.budget,
                self.limit
            ),
            None => {
                format!("{verdict} {}: no round measured both livedash and {} at this load", self.load, self.against)
            }
        }
    }
}

/// Judges each budget on the per-round pairs `(livedash, other)` of CPU a delivery at its load.
pub fn judge(budgets: &[Budget], against: &str, pairs: impl Fn(&str) -> Vec<(f64, f64)>) -> Vec<Verdict> {
    budgets
        .iter()
        .map(|budget| {
            let ratios: Vec<f64> = pairs(&budget.load)
                .into_iter()
                .filter(|(_, other)| *other > 0.0)
                .map(|(ld, other)| ld / other)
                .collect();
            Verdict {
                load: budget.load.clone(),
                against: against.to_owned(),
                ratio: Spread::of(&ratios),
                budget: budget.ratio,
                limit: budget.ratio * (1.0 + budget.tolerance),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Some(Spread { median: 2.0, min: 1.0, max: 3.0 }));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
        assert_eq!(Spread::of(&[5.25]).unwrap().show(1), "5.2");
        assert_eq!(Spread::of(&[5.0, 4.0, 6.0]).unwrap().show(1), "5.0 (4.0–6.0)");
    }

    #[test]
    fn budgets_parse_with_comments_and_refuse_bad_lines() {
        let text = "# load ratio tolerance\n1000x100 0.80 0.15  # set 2026-12-07\n\n1000x300 0.7 0.2\n";
        assert_eq!(
            parse_budgets(text).unwrap(),
            vec![
                Budget { load: "1000x100".into(), ratio: 0.8, tolerance: 0.15 },
                Budget { load: "1000x300".into(), ratio: 0.7, tolerance: 0.2 },
            ]
        );
        assert!(parse_budgets("1000x100 0.8").unwrap_err().contains("line 1"));
        assert!(parse_budgets("1000x100 fast 0.1").unwrap_err().contains("not a number"));
    }

    #[test]
    fn a_ratio_beyond_the_budget_and_its_noise_fails_and_within_passes() {
        let budgets = [Budget { load: "1000x100".into(), ratio: 0.8, tolerance: 0.1 }];
        // Rounds where the machine slowed both servers alike: the ratio holds.
        let within = judge(&budgets, "axum", |_| vec![(5.0, 7.0), (10.0, 13.0), (6.0, 7.0)]);
        assert!(within[0].pass(), "{}", within[0].line());
        assert!((within[0].ratio.unwrap().median - 10.0 / 13.0).abs() < 1e-9);
        // livedash 20 % worse in every round.
        let worse = judge(&budgets, "axum", |_| vec![(6.0, 7.0), (12.0, 13.0), (7.2, 7.0)]);
        assert!(!worse[0].pass(), "{}", worse[0].line());
        // Never measured: not a pass.
        let missing = judge(&budgets, "axum", |_| Vec::new());
        assert!(!missing[0].pass());
        assert!(missing[0].line().starts_with("FAIL"));
        assert!(missing[0].line().contains("livedash and axum"), "{}", missing[0].line());
    }

    #[test]
    fn against_an_earlier_build_the_budget_is_level_within_the_noise() {
        let level = [Budget { load: "1000x100".into(), ratio: 1.0, tolerance: 0.15 }];
        let same = judge(&level, "livedash before", |_| vec![(5.0, 5.4), (5.2, 4.8), (6.0, 5.7)]);
        assert!(same[0].pass(), "{}", same[0].line());
        assert!(same[0].line().contains("livedash / livedash before"), "{}", same[0].line());
        let slower = judge(&level, "livedash before", |_| vec![(6.2, 5.0), (6.0, 5.1), (7.0, 5.9)]);
        assert!(!slower[0].pass(), "a build 20 % dearer fails: {}", slower[0].line());
    }
}
