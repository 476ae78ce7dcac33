//! The server under test: the real `livedash` binary (or a baseline, see `fanout`) in a child
//! process on a free loopback port, with its own database, so its CPU and memory can be read from
//! /proc apart from the generator's.

use anyhow::{Context, bail};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub struct Server {
    child: Child,
    pub addr: String,
    /// `/metrics`'s own listener (empty for a baseline).
    pub metrics_addr: String,
    /// acme's API key, as the demo start-up printed it (empty when demo mode is off).
    pub api_key: String,
    /// Its database (another node may share it); empty for a baseline.
    pub database: PathBuf,
    _dir: Option<TempDir>,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the server costs at one moment, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU time so far.
    pub cpu: Duration,
    pub rss_bytes: u64,
}

impl Server {
    /// Starts `bin` in demo mode with `settings` (`LIVEDASH_*` variables) on top; they may turn demo
    /// mode off (a second node) or name another node's database.
    pub async fn start(bin: &str, settings: &[(&str, String)]) -> anyhow::Result<Self> {
        let demo = !settings.iter().any(|(k, v)| *k == "LIVEDASH_DEMO" && v == "off");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("livedash-loadgen-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let addr = format!("127.0.0.1:{port}");
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let metrics_addr = format!("127.0.0.1:{metrics_port}");
        let bin = std::fs::canonicalize(bin).with_context(|| format!("no server binary at {bin}"))?;
        let mut command = Command::new(&bin);
        command
            .env("LEPTOS_SITE_ADDR", &addr)
            .env("LIVEDASH_METRICS_ADDR", &metrics_addr)
            .env("LIVEDASH_DEMO", "on")
            .env("LIVEDASH_DATABASE", dir.join("livedash.db"))
            .env("RUST_LOG", "warn")
            .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let started = Instant::now();
        let api_key = if !demo {
            String::new()
        } else {
            loop {
                let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await?? else {
                    bail!("{} exited before printing its demo API keys", bin.display());
                };
                if let Some(key) = line.trim().strip_prefix("acme").map(str::trim).filter(|k| k.starts_with("ld_")) {
                    break key.to_owned();
                }
                if started.elapsed() > Duration::from_secs(60) {
                    bail!("no demo API key printed within 60 s");
                }
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let database = settings
            .iter()
            .find(|(k, _)| *k == "LIVEDASH_DATABASE")
            .map_or_else(|| dir.join("livedash.db"), |(_, v)| PathBuf::from(v));
        let server = Self { child, addr, metrics_addr, api_key, database, _dir: Some(TempDir(dir)) };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// Starts `program args… --port P` on a free loopback port P: a baseline server, which answers
    /// `/healthz` like livedash but has no database and no API key.
    pub async fn start_baseline(program: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(program)
            .args(args)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let addr = format!("127.0.0.1:{port}");
        let server = Self {
            child,
            addr,
            metrics_addr: String::new(),
            api_key: String::new(),
            database: PathBuf::new(),
            _dir: None,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if reqwest::get(self.url("/healthz")).await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server did not answer /healthz within 60 s")
    }

    /// CPU time and resident memory now.
    pub fn usage(&self) -> Usage {
        self.child.id().map_or_else(Usage::default, usage_of)
    }

    /// A counter or gauge from `/metrics` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let Ok(response) = reqwest::get(format!("http://{}/metrics", self.metrics_addr)).await else { return 0.0 };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// Samples the server's CPU and memory every 100 ms until dropped; keeps the peaks.
pub struct Sampler {
    peaks: std::sync::Arc<std::sync::Mutex<(f64, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(server: &Server) -> Self {
        let pid_usage = {
            let pid = server.child.id();
            move || pid.map_or_else(Usage::default, usage_of)
        };
        let peaks = std::sync::Arc::new(std::sync::Mutex::new((0.0f64, 0u64)));
        let shared = peaks.clone();
        let task = tokio::spawn(async move {
            let mut last = (Instant::now(), pid_usage());
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = (Instant::now(), pid_usage());
                let cores = (now.1.cpu.saturating_sub(last.1.cpu)).as_secs_f64() / (now.0 - last.0).as_secs_f64();
                let mut peaks = shared.lock().expect("peaks");
                peaks.0 = peaks.0.max(cores * 100.0);
                peaks.1 = peaks.1.max(now.1.rss_bytes);
                last = now;
            }
        });
        Self { peaks, task }
    }

    /// Peak CPU (per cent of one core) and peak RSS so far.
    pub fn peaks(&self) -> (f64, u64) {
        *self.peaks.lock().expect("peaks")
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What this process (the generator) has cost so far.
pub fn own_usage() -> Usage {
    usage_of(std::process::id())
}

/// CPU time (user + system) and resident memory of process `pid`, from /proc.
fn usage_of(pid: u32) -> Usage {
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| {
        // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some(Duration::from_secs_f64((utime + stime) / ticks))
    });
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|status| {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
    });
    Usage { cpu: cpu.unwrap_or_default(), rss_bytes: rss.unwrap_or_default() }
}
