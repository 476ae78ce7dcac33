//! What the fan-out benchmark measured for one server and load, and how it is printed: a block per
//! run, then one table of them all.

use super::*;

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
    pub(super) cpu: Duration,
    pub(super) generator_cpu: Duration,
    pub(super) rss_start: u64,
    pub(super) rss_idle: u64,
    pub(super) rss_peak: u64,
    pub(super) rss_after: u64,
}

impl Figures {
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

pub(super) fn print_figures(target: Target, load: Load, plan: &Plan, f: &Figures) {
    println!(
        "\n{}: {} clients × {} msg/s on each of {} topic(s), {} point(s) a message ({:.0} bytes), {} s",
        target.label(),
        load.clients,
        load.rate,
        plan.topics,
        plan.points,
        f.message_bytes,
        plan.secs
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
        "  server CPU       {:.2} s = {:.2} µs a delivery (generator: {:.2} s = {:.2} µs)",
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

/// One row per load, one column per server: the comparison in Markdown, for docs/benchmarks.md.
pub(super) fn print_table(plan: &Plan, rows: &[(Target, Load, Figures)]) {
    let mut loads: Vec<Load> = Vec::new();
    for (_, load, _) in rows {
        if !loads.contains(load) {
            loads.push(*load);
        }
    }
    println!("\n| load | {} |", plan.targets.iter().map(|t| t.label()).collect::<Vec<_>>().join(" | "));
    println!("|---|{}", "---|".repeat(plan.targets.len()));
    for load in loads {
        let cells: Vec<String> = plan
            .targets
            .iter()
            .map(|target| {
                rows.iter().find(|(t, l, _)| t == target && *l == load).map_or_else(String::new, |(_, _, f)| {
                    format!(
                        "p99 {:.0} ms, {:.0}k/s, {:.1} µs CPU, lost {}, {:.1} KB/socket",
                        f.latency.percentile(99.0).as_secs_f64() * 1e3,
                        f.per_sec / 1e3,
                        f.cpu_per_delivery_us(),
                        f.lost + f.repeated,
                        f.bytes_per_socket(load.clients) / 1e3
                    )
                })
            })
            .collect();
        println!("| {} × {} msg/s | {} |", load.clients, load.rate, cells.join(" | "));
    }
}
