//! `loadgen`: drives a real livedash server from outside and prints figures (it never passes or
//! fails on them). It starts the server binary itself, in demo mode on a free loopback port, so the
//! server's CPU and memory can be read apart from its own.
//!
//! ```text
//! loadgen storm   [--clients 5000]                        reconnect storm
//! loadgen hostile [--clients 200] [--rate 20] [--secs 10] hostile clients beside a normal load
//! loadgen nodes   [--clients 1000] [--rate 20] [--secs 10] [--rounds 5]
//!                                                          two nodes over Redis against one
//! loadgen kafka   [--clients 1000] [--rates 50,100,200,400] [--secs 10]
//!                                                          the Kafka bridge: sustained rate, produce→screen
//! loadgen fanout  [--targets livedash,livedash-sse,axum,node] [--loads 1000x20,1000x100] [--topics 1] [--points 1] [--secs 10]
//!                 [--repeat 1] [--from many,one] [--read scan|parse] [--budget loadgen/cpu-budget.txt]
//!                 [--before-bin PATH, with the target livedash-before: an earlier build, checked level]
//!                                                          fan-out against two baselines (docs/benchmarks.md)
//! loadgen targets [--clients 1000] [--secs 10]             the success figures against their targets:
//!                                                          PASS/FAIL per target, exit 1 if any fails
//! loadgen baseline-axum --port P                           the axum baseline alone
//!         common: [--bin target/debug/livedash]
//! ```

mod baseline_axum;
mod client;
mod fanout;
mod hostile;
mod kafka;
mod nodes;
mod scan;
mod server;
mod sse;
mod stats;
mod storm;
mod tally;
mod targets;
mod wire;

use anyhow::{Context, bail};

fn option(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn number<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T> {
    option(args, name).map_or(Ok(default), |v| v.parse().map_err(|_| anyhow::anyhow!("{name} {v:?}: not a number")))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let bin = option(&args, "--bin").unwrap_or_else(|| format!("{target}/debug/livedash"));
    match args.first().map(String::as_str) {
        Some("storm") => {
            let clients = number(&args, "--clients", 5000)?;
            let server = server::Server::start(&bin, &storm::settings(clients)).await.context("the server")?;
            storm::run(&server, clients).await
        }
        Some("hostile") => {
            let clients = number(&args, "--clients", 200)?;
            let server = server::Server::start(&bin, &hostile::settings(clients)).await.context("the server")?;
            hostile::run(&server, clients, number(&args, "--rate", 20)?, number(&args, "--secs", 10)?).await
        }
        Some("nodes") => {
            let (clients, rate, secs) =
                (number(&args, "--clients", 1000)?, number(&args, "--rate", 20)?, number(&args, "--secs", 10)?);
            let rounds = number(&args, "--rounds", 5)?;
            anyhow::ensure!(rounds > 0, "--rounds must be at least 1");
            nodes::run(&bin, clients, rate, secs, rounds).await
        }
        Some("kafka") => {
            let rates = option(&args, "--rates").unwrap_or_else(|| "50,100,200,400".into());
            let rates = rates
                .split(',')
                .map(|r| r.trim().parse::<u32>().map_err(|_| anyhow::anyhow!("--rates {r:?}: not a number")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            anyhow::ensure!(rates.iter().all(|r| *r > 0), "--rates must be above 0");
            kafka::run(&bin, number(&args, "--clients", 1000)?, &rates, number(&args, "--secs", 10)?).await
        }
        Some("fanout") => {
            let list = |name: &str, default: &str| option(&args, name).unwrap_or_else(|| default.into());
            let targets = list("--targets", "livedash,livedash-sse,axum,node");
            let loads = list("--loads", "1000x20,1000x100,1000x300,10000x2");
            let plan = fanout::Plan {
                targets: targets.split(',').map(|t| fanout::Target::parse(t.trim())).collect::<anyhow::Result<_>>()?,
                loads: loads.split(',').map(fanout::Load::parse).collect::<anyhow::Result<_>>()?,
                topics: number(&args, "--topics", 1)?,
                points: number(&args, "--points", 1)?,
                secs: number(&args, "--secs", 10)?,
                repeat: number(&args, "--repeat", 1)?,
                sources: list("--from", "many")
                    .split(',')
                    .map(|s| fanout::Sources::parse(s.trim()))
                    .collect::<anyhow::Result<_>>()?,
                reading: fanout::Reading::parse(&list("--read", "scan"))?,
                budget: option(&args, "--budget").map(Into::into),
                bin,
                before_bin: option(&args, "--before-bin"),
            };
            anyhow::ensure!(
                plan.topics > 0 && plan.secs > 0 && plan.repeat > 0,
                "--topics, --secs and --repeat must be above 0"
            );
            fanout::run(&plan).await
        }
        Some("targets") => {
            let clients = number(&args, "--clients", 1000)?;
            let server = server::Server::start(&bin, &targets::settings(clients)).await.context("the server")?;
            let verdicts = targets::run(&server, clients, number(&args, "--secs", 10)?).await?;
            for verdict in &verdicts {
                println!("{}", verdict.line());
            }
            let failed = verdicts.iter().filter(|v| !v.pass).count();
            anyhow::ensure!(failed == 0, "{failed} of {} server targets not met", verdicts.len());
            Ok(())
        }
        Some("baseline-axum") => Ok(baseline_axum::serve(number(&args, "--port", 4000)?).await?),
        _ => bail!(
            "usage: loadgen storm [--clients N] | targets [--clients N] [--secs S] | hostile|nodes [--clients N] [--rate R] [--secs S] | kafka [--clients N] [--rates R,R] [--secs S] | fanout [--targets T,T] [--loads NxR,NxR] [--topics T] [--points P] [--secs S] [--repeat N] [--from many,one] [--read scan|parse] [--budget FILE] [--bin PATH]"
        ),
    }
}
