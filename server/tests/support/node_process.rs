//! A livedash node as its own process (the real binary, `CARGO_BIN_EXE_livedash`), for what only a
//! process can show: being killed with SIGKILL, nothing flushed, no goodbye to Redis.

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
};

pub struct NodeProcess {
    pub addr: SocketAddr,
    /// `/metrics`'s own listener.
    pub metrics_addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl NodeProcess {
    /// Starts the binary with `env` (the `LIVEDASH_*` settings) on a free loopback port and waits
    /// until `/readyz` says it is ready.
    pub async fn start(env: &HashMap<&str, String>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let metrics_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
        // Its own working directory: a developer's livedash.toml must not change what it runs.
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_livedash"))
            .current_dir(dir.path())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("LEPTOS_SITE_ADDR", addr.to_string())
            .env("LIVEDASH_METRICS_ADDR", metrics_addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the livedash binary starts");
        let node = Self { addr, metrics_addr, child, _dir: dir };
        super::eventually_async("the node process is ready", || async {
            let ready = reqwest::get(format!("http://{addr}/readyz")).await;
            ready.is_ok_and(|r| r.status() == 200)
        })
        .await;
        node
    }

    /// SIGKILL: the node dies at once, the way a crash or an OOM kill ends it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
