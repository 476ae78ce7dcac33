//! A PostgreSQL of the test's own: Debian's `postgresql` (installed when missing), `initdb` into a
//! temporary directory and `pg_ctl start` on a free loopback port. Never the machine's server.
//!
//! Shared by the store's unit tests and the integration tests (`#[path]`), so both start it one way.
//!
//! A watchdog shell holds the read end of a pipe whose write end only this process has. When the
//! owner drops the server, or the test process ends however it ends (a panic, an abort, a kill),
//! the pipe closes and the watchdog stops PostgreSQL and deletes its directory. That is what lets
//! [`fresh_database`] keep one server for the whole process in a static, which never drops.

use std::{
    net::TcpListener,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Once, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

pub struct PostgresServer {
    pub port: u16,
    watchdog: Option<Child>,
}

impl PostgresServer {
    pub fn start() -> Self {
        install();
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("livedash-pg-").tempdir().expect("a temporary directory").keep();
        let data = dir.join("data");
        // From here on, dropping `server` (a panic included) stops the cluster and deletes it.
        let mut server = Self { port: 0, watchdog: Some(watchdog(&bin, &data, &dir)) };
        if running_as_root() {
            // initdb refuses to run as root: the cluster belongs to Debian's `postgres` user.
            run(Command::new("chown").arg("postgres:").arg(&dir), "chown the cluster's directory");
        }
        run(
            as_postgres(&bin.join("initdb"))
                .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync", "-D"])
                .arg(&data),
            "initdb",
        );
        let mut last_error = String::new();
        // A free port can be taken between asking and binding: a few tries, each on a new port.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c max_connections=200",
                dir.display()
            );
            let started = as_postgres(&bin.join("pg_ctl"))
                .args(["-w", "-t", "60", "-l"])
                .arg(dir.join("log"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "start"])
                .stdin(Stdio::null())
                .output()
                .expect("pg_ctl runs");
            if started.status.success() {
                server.port = port;
                return server;
            }
            last_error = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        }
        panic!("PostgreSQL did not start:\n{last_error}");
    }

    /// The URL of `database` on this server (Store::open creates it when missing).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server now and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The URL of a new database, distinct from every other this process asked for, on one server
/// started for the whole test process.
pub fn fresh_database() -> String {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = SERVER.get_or_init(PostgresServer::start);
    server.url(&format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Waits for its stdin to close, then stops the cluster in `data` and deletes `dir`. It ignores the
/// signals a Ctrl-C or a killed process group sends, so it outlives the test process to clean up.
fn watchdog(bin: &Path, data: &Path, dir: &Path) -> Child {
    let mut stop = as_postgres(&bin.join("pg_ctl"));
    stop.args(["-m", "immediate", "-D"]).arg(data).arg("stop");
    Command::new("sh")
        .args(["-c", r#"trap '' INT TERM HUP; read _; dir=$1; shift; "$@" >/dev/null 2>&1; rm -rf "$dir""#, "watchdog"])
        .arg(dir)
        .arg(stop.get_program())
        .args(stop.get_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh starts")
}

fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn run(command: &mut Command, what: &str) {
    let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Debian keeps the server's programs under /usr/lib/postgresql/<major>/bin, off PATH; elsewhere
/// they are on PATH.
fn bin_dir() -> PathBuf {
    let debian = std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten();
    let newest = debian
        .filter_map(|entry| Some((entry.file_name().to_str()?.parse::<u32>().ok()?, entry.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => {
            let found = Command::new("sh").args(["-c", "command -v initdb"]).output().expect("sh runs");
            let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
            assert!(!path.is_empty(), "no initdb: install PostgreSQL (Debian: apt-get install postgresql)");
            PathBuf::from(path).parent().unwrap().to_owned()
        }
    }
}

/// Installs Debian's `postgresql` the first time a test needs it and it is missing.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let have = Path::new("/usr/lib/postgresql").exists()
            || Command::new("sh").args(["-c", "command -v initdb"]).output().is_ok_and(|o| o.status.success());
        if have {
            return;
        }
        eprintln!("installing Debian's postgresql for the store's tests");
        let installed = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        assert!(installed.is_ok_and(|s| s.success()), "could not install postgresql (apt-get install postgresql)");
    });
}
