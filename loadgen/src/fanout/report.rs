//! What the fan-out benchmark measured for one server and load, and how it is printed: a block per
//! run, then one table of them all (the median and range over the rounds).

use super::*;
use spread::{Budget, Spread, Verdict};

/// What one server did under one load.
pub(super) struct Figures {
    pub(super) connect: Samples,
    pub(super) latency: Samples,
    pub(super) publish: Samples,
    pub(super) published: u64,
    pub(super) failed_publishes: u64,
    pub(super) publish_rate: f64,
    pub(super) deliveries: u64,
    pub(super) per_sec: f64,
    pub(super) message_bytes: f64,
    pub(super) lost: u64,
    pub(super) repeated: u64,
    pub(super) gaps: u64,
    /// The server's CPU from the first client's connect to the last delivery.
    pub(super) cpu: Duration,
    pub(super) window: Window,
    pub(super) generator_cpu: Duration,
    pub(super) rss_start: u64,
    pub(super) rss_idle: u64,
    pub(super) rss_peak: u64,
    pub(super) rss_after: u64,
}

/// The publishing window, from the end of the warm-up to the last publish.
pub(super) struct Window {
    pub(super) secs: f64,
    pub(super) cpu: Duration,
    /// Deliveries the clients counted in it.
    pub(super) deliveries: u64,
    /// The server's CPU (seconds a second) with the same clients idle.
    pub(super) idle_cpu_rate: f64,
}

impl Window {
    /// The server's CPU over the window beyond what it spends idle, a delivery, in µs.
    pub(super) fn marginal_us(&self) -> f64 {
        let busy = self.cpu.as_secs_f64() - self.idle_cpu_rate * self.secs;
        busy.max(0.0) * 1e6 / self.deliveries.max(1) as f64
    }
}

impl Figures {
    /// The whole run's CPU (set-up, idle sockets and drain included) a delivery, in µs.
    pub(super) fn cpu_per_delivery_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.deliveries.max(1) as f64
    }

    pub(super) fn bytes_per_socket(&self, clients: usize) -> f64 {
        self.rss_idle.saturating_sub(self.rss_start) as f64 / clients as f64
    }
}

pub(super) fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

pub(super) fn print_figures(run: &Run, plan: &Plan) {
    let (target, load, f) = (run.target, run.load, &run.figures);
    println!(
        "\n{}: {} clients × {} msg/s on each of {} topic(s), {} point(s) a message ({:.0} bytes), {} s, {}, round {}",
        target.label(),
        load.clients,
        load.rate,
        plan.topics,
        plan.points,
        f.message_bytes,
        plan.secs,
        run.sources.label(),
        run.round,
    );
    println!("  connect          {}", f.connect.summary());
    println!("  publish→receive  {}", f.latency.summary());
    println!(
        "  publish API      {}; {} published, {:.1}/s, {} failed",
        f.publish.summary(),
        f.published,
        f.publish_rate,
        f.failed_publishes
    );
    println!(
        "  deliveries       {} ({:.0}/s); lost {}, repeated {}, gaps {}",
        f.deliveries, f.per_sec, f.lost, f.repeated, f.gaps
    );
    println!(
        "  marginal CPU     {:.2} µs a delivery: {:.2} s over {:.1} s of publishing, {:.1} % of a core idle, {} deliveries",
        f.window.marginal_us(),
        f.window.cpu.as_secs_f64(),
        f.window.secs,
        f.window.idle_cpu_rate * 100.0,
        f.window.deliveries
    );
    println!(
        "  whole-run CPU    {:.2} s = {:.2} µs a delivery (generator: {:.2} s = {:.2} µs)",
        f.cpu.as_secs_f64(),
        f.cpu_per_delivery_us(),
        f.generator_cpu.as_secs_f64(),
        f.generator_cpu.as_secs_f64() * 1e6 / f.deliveries.max(1) as f64
    );
    println!(
        "  server memory    {} at start, {} with the clients idle ({:.1} KB a socket), peak {}, {} after they left",
        mb(f.rss_start),
        mb(f.rss_idle),
        f.bytes_per_socket(load.clients) / 1e3,
        mb(f.rss_peak),
        mb(f.rss_after)
    );
}

/// One row per load (and client addresses), one column per server: the comparison in Markdown, for
/// docs/benchmarks.md; with several rounds, each figure is the median and its range.
pub(super) fn print_table(plan: &Plan, runs: &[Run]) {
    println!("\n| load | {} |", plan.targets.iter().map(|t| t.label()).collect::<Vec<_>>().join(" | "));
    println!("|---|{}", "---|".repeat(plan.targets.len()));
    for &sources in &plan.sources {
        for &load in &plan.loads {
            let cells: Vec<String> = plan.targets.iter().map(|&target| cell(runs, sources, target, load)).collect();
            let from = if plan.sources.len() > 1 { format!(", {}", sources.label()) } else { String::new() };
            println!("| {} × {} msg/s{from} | {} |", load.clients, load.rate, cells.join(" | "));
        }
    }
}

fn cell(runs: &[Run], sources: Sources, target: Target, load: Load) -> String {
    let figures: Vec<&Figures> = runs
        .iter()
        .filter(|r| r.sources == sources && r.target == target && r.load == load)
        .map(|r| &r.figures)
        .collect();
    let spread = |value: fn(&Figures) -> f64| Spread::of(&figures.iter().map(|f| value(f)).collect::<Vec<_>>());
    let (Some(cpu), Some(p99), Some(rate)) = (
        spread(|f| f.window.marginal_us()),
        spread(|f| f.latency.percentile(99.0).as_secs_f64() * 1e3),
        spread(|f| f.per_sec / 1e3),
    ) else {
        return String::new();
    };
    let lost: u64 = figures.iter().map(|f| f.lost + f.repeated).sum();
    let kb = Spread::of(&figures.iter().map(|f| f.bytes_per_socket(load.clients) / 1e3).collect::<Vec<_>>())
        .map_or(0.0, |s| s.median);
    format!("{} µs CPU, p99 {} ms, {}k/s, lost {lost}, {kb:.1} KB/socket", cpu.show(1), p99.show(0), rate.show(0))
}

/// Judges the budgets on each round's runs of livedash and of `against` (with clients from many
/// addresses when both were measured, as a deployment's would be).
pub(super) fn check(budgets: &[Budget], runs: &[Run], against: Target) -> Vec<Verdict> {
    spread::judge(budgets, against.label(), |load| {
        let at = |round: usize, target: Target| {
            runs.iter()
                .filter(|r| r.round == round && r.target == target && load_name(r.load) == load)
                .min_by_key(|r| r.sources != Sources::Many)
                .map(|r| r.figures.window.marginal_us())
        };
        let rounds = runs.iter().map(|r| r.round).max().unwrap_or(0);
        (1..=rounds).filter_map(|round| Some((at(round, Target::Livedash)?, at(round, against)?))).collect()
    })
}

/// `1000x100`, as `--loads` and the budget file name a load.
fn load_name(load: Load) -> String {
    format!("{}x{}", load.clients, load.rate)
}
