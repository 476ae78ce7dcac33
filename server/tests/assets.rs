//! The site's files over real HTTP: pages link them by URLs that name their content, those URLs
//! may be kept for a year, precompressed copies go to browsers that accept them, and pages are
//! revalidated on every visit.

mod support;

use server::config::Config;
use std::{fs, path::Path};
use support::{ACME_ADMIN, TestServer};

/// A site root as the build leaves it: the bundle with its brotli and gzip copies and the list of
/// what they were made from, ECharts without.
fn site(root: &Path) {
    fs::create_dir_all(root.join("pkg")).unwrap();
    fs::create_dir_all(root.join("vendor")).unwrap();
    fs::write(root.join("pkg/livedash.wasm"), vec![b'w'; 4096]).unwrap();
    fs::write(root.join("pkg/livedash.wasm.br"), b"brotli bytes").unwrap();
    fs::write(root.join("pkg/livedash.wasm.gz"), b"gzip bytes").unwrap();
    fs::write(root.join("pkg/livedash.js"), b"export default function init() {}").unwrap();
    fs::write(root.join("pkg/livedash.css"), b"body { margin: 0 }").unwrap();
    fs::write(root.join("vendor/echarts.min.js"), b"var echarts = {};").unwrap();
    let digest = sha256_hex(&vec![b'w'; 4096]);
    fs::write(root.join(server::assets::COPIES_MANIFEST), format!(r#"{{"pkg/livedash.wasm":"{digest}"}}"#)).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every `href`/`src` of the page that points into `/assets/`.
fn asset_links(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|part| part.starts_with("/assets/") || part.starts_with("assets/"))
        .map(|part| format!("/{}", part.trim_start_matches('/')))
        .collect()
}

async fn get(url: &str, encodings: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).header("accept-encoding", encodings).send().await.unwrap()
}

#[tokio::test]
async fn files_are_linked_by_content_and_kept_for_a_year() {
    let root = tempfile::tempdir().unwrap();
    site(root.path());
    let server = TestServer::with_site(Config { demo: false, ..Config::default() }, root.path()).await;
    let cookie = server.login(ACME_ADMIN).await;
    let page = reqwest::Client::new().get(server.url("/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "private, no-cache", "a page is asked for again on every visit");
    let html = page.text().await.unwrap();
    let links = asset_links(&html);
    let stylesheet = links.iter().find(|l| l.ends_with("/pkg/livedash.css")).expect("the stylesheet by hash");
    let echarts = links.iter().find(|l| l.ends_with("/vendor/echarts.min.js")).expect("ECharts by hash");
    // The hydration script names the package directory; the bundle is in it.
    let pkg_dir = stylesheet.trim_end_matches("/livedash.css");
    assert!(html.contains(&pkg_dir[1..]), "the hydration script loads from {pkg_dir}");

    let wasm = get(&server.url(&format!("{pkg_dir}/livedash.wasm")), "gzip, deflate, br").await;
    assert_eq!(wasm.status(), 200);
    assert_eq!(wasm.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(wasm.headers()["content-encoding"], "br");
    assert_eq!(wasm.headers()["vary"], "accept-encoding");
    assert_eq!(wasm.bytes().await.unwrap(), "brotli bytes");
    let gzip = get(&server.url(&format!("{pkg_dir}/livedash.wasm")), "gzip").await;
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let identity = get(&server.url(&format!("{pkg_dir}/livedash.wasm")), "identity").await;
    assert!(identity.headers().get("content-encoding").is_none());
    assert_eq!(identity.bytes().await.unwrap().len(), 4096);

    let script = get(&server.url(echarts), "br").await;
    assert_eq!(script.status(), 200);
    assert!(script.headers().get("content-encoding").is_none(), "no copy was built: sent as it is");
    assert_eq!(script.text().await.unwrap(), "var echarts = {};");

    // A hash this build does not have: not found, rather than other content under that name.
    let stale = get(&server.url("/assets/0123456789abcdef/vendor/echarts.min.js"), "br").await;
    assert_eq!(stale.status(), 404);
    assert_eq!(stale.headers()["cache-control"], "no-cache");
    // The plain path still works, revalidated on every use.
    let plain = get(&server.url("/vendor/echarts.min.js"), "br").await;
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    let missing = get(&server.url("/no/such/page"), "br").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["cache-control"], "private, no-cache");

    // Rebuilt under the running server: no longer what its hashed URL names.
    fs::write(root.path().join("vendor/echarts.min.js"), b"var echarts = {v: 2};").unwrap();
    let rebuilt = get(&server.url(echarts), "br").await;
    assert_eq!(rebuilt.status(), 404, "new bytes are never sent under the old hash");
    server.stop().await;
}

#[tokio::test]
async fn a_new_build_gets_new_urls() {
    let root = tempfile::tempdir().unwrap();
    site(root.path());
    let first = TestServer::with_site(Config { demo: false, ..Config::default() }, root.path()).await;
    let links = |html: String| asset_links(&html);
    let cookie = first.login(ACME_ADMIN).await;
    let page = |server: &TestServer, cookie: String| {
        let url = server.url("/");
        async move { reqwest::Client::new().get(url).header("cookie", cookie).send().await.unwrap().text().await.unwrap() }
    };
    let before = links(page(&first, cookie).await);
    first.stop().await;

    let wasm = root.path().join("pkg/livedash.wasm");
    // Rebuilt with the same size; its copies and the list are the old build's.
    fs::write(&wasm, vec![b'x'; 4096]).unwrap();
    let second = TestServer::with_site(Config { demo: false, ..Config::default() }, root.path()).await;
    let cookie = second.login(ACME_ADMIN).await;
    let after = links(page(&second, cookie).await);
    let bundle = |links: &[String]| links.iter().find(|l| l.ends_with("/pkg/livedash.css")).cloned().unwrap();
    let echarts = |links: &[String]| links.iter().find(|l| l.ends_with("/echarts.min.js")).cloned().unwrap();
    assert_ne!(bundle(&before), bundle(&after), "a new bundle is a new package directory");
    assert_eq!(echarts(&before), echarts(&after), "an unchanged file keeps its URL, and the browser its copy");
    // The rebuilt bundle's copies were made from other bytes: stale, so never sent.
    let wasm = get(&second.url(&bundle(&after).replace("livedash.css", "livedash.wasm")), "br").await;
    assert!(wasm.headers().get("content-encoding").is_none(), "a stale copy is not sent");
    assert_eq!(wasm.bytes().await.unwrap(), vec![b'x'; 4096]);
    second.stop().await;
}
