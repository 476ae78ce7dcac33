//! The site's static files under URLs that name their content, so that browsers keep them.
//!
//! At start-up the server hashes every file in the site root: the WebAssembly bundle, its JS glue
//! and the stylesheet as one group (the hydration script names the glue and the bundle by one
//! directory, and they change together), every other file (ECharts, the icon) on its own. Pages
//! link `/assets/{hash}/{path}`, served with `Cache-Control: immutable` for a year: a new build
//! gives new URLs, so a repeat visit downloads nothing but the page, and an old URL is a 404 rather
//! than new content under a name that promised the old. The plain paths still work, revalidated
//! on every use (`no-cache`), as do pages.
//!
//! Files are sent precompressed when the build left `.br`/`.gz` copies beside them and named, in
//! [`COPIES_MANIFEST`], the digest of the bytes it compressed (`scripts/precompress.mjs`, run by
//! `scripts/build-site`). A copy is sent only while its file still has that digest, so a copy left
//! over from another build is never sent, whatever the files' times say.
//!
//! Under `cargo leptos watch` (`LEPTOS_WATCH`) files change under a running server, so nothing is
//! marked immutable there, and files go uncompressed.

use axum::{
    body::Body,
    extract::{Path as UrlPath, Request, State},
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use std::{
    collections::{HashMap, HashSet},
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// Where hashed URLs live.
pub const PREFIX: &str = "assets";
/// Hex digits of the content hash in a URL: 64 bits, plenty to tell builds apart.
const HASH_LEN: usize = 16;
/// The precompressed copies the build may leave, by suffix.
const VARIANTS: [&str; 2] = [".br", ".gz"];
/// The list, in the site root, of the files the build wrote copies of: path → SHA-256 (hex) of the
/// bytes compressed.
pub const COPIES_MANIFEST: &str = "precompressed.json";

pub const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
pub const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
/// Pages are per user: no shared cache may keep them.
pub const PAGES: HeaderValue = HeaderValue::from_static("private, no-cache");

#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// The site root's files and their hashes, as found at start-up.
#[derive(Debug, Clone)]
pub struct Assets {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The hash of the package directory as a whole (`pkg/…`).
    pkg_dir: String,
    pkg_hash: Option<String>,
    pkg_files: HashSet<String>,
    /// Every other file: its path from the site root (`vendor/echarts.min.js`) → its hash.
    files: HashMap<String, String>,
    /// Files whose precompressed copies were made from the bytes found at start-up.
    precompressed: HashSet<String>,
    /// Every file's size and time as hashed: one rebuilt under the running server is no longer
    /// what its hashed URL names.
    stamps: HashMap<String, Stamp>,
    /// Files change under a running server (`cargo leptos watch`).
    watching: bool,
    root: PathBuf,
    compressed: ServeDir,
    plain: ServeDir,
}

impl Assets {
    /// Hashes the files under `site_root`. A missing root (tests that serve no front end) is an
    /// empty site: every URL stays as it is.
    pub fn scan(site_root: &Path, pkg_dir: &str, watching: bool) -> Result<Self, AssetError> {
        let mut found = Vec::new();
        if site_root.is_dir() {
            walk(site_root, site_root, &mut found)?;
        }
        found.sort();
        let pkg_prefix = format!("{}/", pkg_dir.trim_matches('/'));
        let mut files = HashMap::new();
        let mut precompressed = HashSet::new();
        let mut stamps = HashMap::new();
        let mut pkg = Sha256::new();
        let mut pkg_files = HashSet::new();
        let copied = copies_manifest(site_root);
        for relative in &found {
            if relative == COPIES_MANIFEST || VARIANTS.iter().any(|suffix| relative.ends_with(suffix)) {
                continue;
            }
            let path = site_root.join(relative);
            stamps.insert(relative.clone(), stamp(&path));
            let digest = hash_file(&path)?;
            if relative.starts_with(&pkg_prefix) {
                pkg.update(relative.as_bytes());
                pkg.update(digest);
                pkg_files.insert(relative.clone());
            } else {
                files.insert(relative.clone(), short(&digest));
            }
            // Under watch, a file may be rebuilt after this check, its copies left stale.
            if !watching && copied.get(relative) == Some(&hex(&digest)) && has_copy(&path) {
                precompressed.insert(relative.clone());
            }
        }
        let pkg_hash = (!pkg_files.is_empty()).then(|| short(&pkg.finalize()));
        Ok(Self {
            inner: Arc::new(Inner {
                pkg_dir: pkg_dir.trim_matches('/').to_owned(),
                pkg_hash,
                pkg_files,
                files,
                precompressed,
                stamps,
                watching,
                root: site_root.to_owned(),
                compressed: ServeDir::new(site_root).precompressed_br().precompressed_gzip(),
                plain: ServeDir::new(site_root),
            }),
        })
    }

    /// The package directory the hydration script should name: `assets/{hash}/pkg`.
    pub fn pkg_dir(&self) -> String {
        match &self.inner.pkg_hash {
            Some(hash) => format!("{PREFIX}/{hash}/{}", self.inner.pkg_dir),
            None => self.inner.pkg_dir.clone(),
        }
    }

    /// Where the shell links the stylesheet, ECharts and the icon.
    pub fn site_urls(&self, options: &leptos::config::LeptosOptions) -> app::SiteUrls {
        let plain = app::SiteUrls::plain(&options.site_pkg_dir, &options.output_name);
        app::SiteUrls {
            stylesheet: self.url(&plain.stylesheet),
            echarts: self.url(&plain.echarts),
            favicon: self.url(&plain.favicon),
        }
    }

    /// The URL to link for a file of the site root (`/vendor/echarts.min.js`); the path itself
    /// when the file was not there at start-up.
    pub fn url(&self, path: &str) -> String {
        let relative = path.trim_start_matches('/');
        match self.hash_of(relative) {
            Some(hash) => format!("/{PREFIX}/{hash}/{relative}"),
            None => format!("/{relative}"),
        }
    }

    /// The hash a file found at start-up is linked by (a package file: its directory's).
    fn hash_of(&self, relative: &str) -> Option<&str> {
        let in_pkg = relative.strip_prefix(&self.inner.pkg_dir).is_some_and(|rest| rest.starts_with('/'));
        match in_pkg {
            true => self.inner.pkg_files.contains(relative).then_some(self.inner.pkg_hash.as_deref()?),
            false => self.inner.files.get(relative).map(String::as_str),
        }
    }

    /// Serves a file of the site root by its plain path (`/vendor/echarts.min.js`), to be
    /// revalidated on every use; gives the request back when no such file was there at start-up.
    pub async fn serve_plain(&self, request: Request) -> Result<Response, Request> {
        let relative = request.uri().path().trim_start_matches('/').to_owned();
        if self.hash_of(&relative).is_none() {
            return Err(request);
        }
        let mut response = self.serve(&relative, request).await;
        response.headers_mut().insert(header::CACHE_CONTROL, REVALIDATE);
        Ok(response)
    }

    /// Serves a file of the site root, precompressed when a fresh copy exists.
    async fn serve(&self, relative: &str, request: Request) -> Response {
        let (mut parts, _) = request.into_parts();
        parts.uri = match format!("/{relative}").parse::<Uri>() {
            Ok(uri) => uri,
            Err(_) => return StatusCode::NOT_FOUND.into_response(),
        };
        let request = Request::from_parts(parts, Body::empty());
        // A file rebuilt since start-up no longer matches the digest its copies were made from.
        let precompressed = self.inner.precompressed.contains(relative) && self.inner.unchanged(relative);
        let dir = if precompressed { &self.inner.compressed } else { &self.inner.plain };
        let mut response = match dir.clone().oneshot(request).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
        if precompressed {
            // Caches between must keep the encodings apart.
            response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        response
    }

    /// How long a browser may keep a file served under a hashed URL.
    fn hashed_caching(&self) -> HeaderValue {
        if self.inner.watching { REVALIDATE } else { IMMUTABLE }
    }
}

/// `GET /assets/{hash}/{*path}`: the file, when `hash` is its hash in this build.
pub async fn hashed(
    State(assets): State<Assets>,
    UrlPath((hash, path)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let inner = &assets.inner;
    if assets.hash_of(&path) != Some(hash.as_str()) || !(inner.watching || inner.unchanged(&path)) {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, REVALIDATE)], "no such file in this build")
            .into_response();
    }
    let mut response = assets.serve(&path, request).await;
    if response.status().is_success() {
        response.headers_mut().insert(header::CACHE_CONTROL, assets.hashed_caching());
    }
    response
}

impl Inner {
    /// Whether the file is still the one hashed at start-up.
    fn unchanged(&self, relative: &str) -> bool {
        self.stamps.get(relative) == Some(&stamp(&self.root.join(relative)))
    }
}

/// Pages and errors: the browser asks again every time.
pub async fn revalidate(mut response: Response) -> Response {
    response.headers_mut().entry(header::CACHE_CONTROL).or_insert(PAGES);
    response
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) -> Result<(), AssetError> {
    let read = |e| AssetError::Read { path: dir.to_owned(), source: e };
    for entry in fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.is_dir() {
            walk(root, &path, found)?;
        } else if let Ok(relative) = path.strip_prefix(root)
            && let Some(relative) = relative.to_str()
        {
            // URLs use `/` whatever the platform.
            found.push(relative.replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<[u8; 32], AssetError> {
    let failed = |e| AssetError::Read { path: path.to_owned(), source: e };
    let mut file = fs::File::open(path).map_err(failed)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(failed)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..n]);
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn short(digest: &[u8]) -> String {
    hex(digest)[..HASH_LEN].to_owned()
}

/// What the build wrote copies of; nothing when it left no list (or one that does not parse).
fn copies_manifest(site_root: &Path) -> HashMap<String, String> {
    fs::read_to_string(site_root.join(COPIES_MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn has_copy(path: &Path) -> bool {
    VARIANTS.iter().any(|suffix| {
        let mut copy = path.as_os_str().to_owned();
        copy.push(suffix);
        PathBuf::from(copy).is_file()
    })
}

/// A file's size and modification time: what tells that it was written again.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    fs::metadata(path).and_then(|m| Ok((m.len(), m.modified()?))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("pkg")).unwrap();
        fs::create_dir_all(dir.path().join("vendor")).unwrap();
        fs::write(dir.path().join("pkg/livedash.wasm"), b"wasm").unwrap();
        fs::write(dir.path().join("pkg/livedash.js"), b"js").unwrap();
        fs::write(dir.path().join("vendor/echarts.min.js"), b"echarts").unwrap();
        dir
    }

    #[test]
    fn urls_name_the_content() {
        let dir = site();
        let assets = Assets::scan(dir.path(), "pkg", false).unwrap();
        let echarts = assets.url("/vendor/echarts.min.js");
        assert!(echarts.starts_with("/assets/") && echarts.ends_with("/vendor/echarts.min.js"), "{echarts}");
        assert!(assets.pkg_dir().starts_with("assets/") && assets.pkg_dir().ends_with("/pkg"));
        assert_eq!(assets.url("/missing.txt"), "/missing.txt", "unknown files keep their path");

        fs::write(dir.path().join("pkg/livedash.wasm"), b"new wasm").unwrap();
        let rebuilt = Assets::scan(dir.path(), "pkg", false).unwrap();
        assert_ne!(rebuilt.pkg_dir(), assets.pkg_dir(), "a new bundle is a new directory");
        assert_eq!(rebuilt.url("/vendor/echarts.min.js"), echarts, "an unchanged file keeps its URL");
    }

    /// The build's list of what it compressed, as `scripts/precompress.mjs` writes it.
    fn list_copies(dir: &Path, files: &[&str]) {
        let list: HashMap<&str, String> = files.iter().map(|f| (*f, hex(&hash_file(&dir.join(f)).unwrap()))).collect();
        fs::write(dir.join(COPIES_MANIFEST), serde_json::to_string(&list).unwrap()).unwrap();
    }

    #[test]
    fn only_copies_of_these_bytes_are_served() {
        let dir = site();
        fs::write(dir.path().join("pkg/livedash.wasm.br"), b"br").unwrap();
        fs::write(dir.path().join("pkg/livedash.js.br"), b"br").unwrap();
        let unlisted = Assets::scan(dir.path(), "pkg", false).unwrap();
        assert!(unlisted.inner.precompressed.is_empty(), "copies the build did not list are not trusted");

        list_copies(dir.path(), &["pkg/livedash.wasm", "pkg/livedash.js", "vendor/echarts.min.js"]);
        // Rebuilt after its copies were made, with the same size and time: only the digest tells.
        let js = dir.path().join("pkg/livedash.js");
        let written = fs::metadata(&js).unwrap().modified().unwrap();
        fs::write(&js, b"JS").unwrap();
        fs::File::options().write(true).open(&js).unwrap().set_modified(written).unwrap();
        let assets = Assets::scan(dir.path(), "pkg", false).unwrap();
        assert!(assets.inner.precompressed.contains("pkg/livedash.wasm"));
        assert!(!assets.inner.precompressed.contains("pkg/livedash.js"), "a copy of other bytes is stale");
        assert!(!assets.inner.precompressed.contains("vendor/echarts.min.js"), "listed, but no copy exists");
        assert!(assets.hash_of(COPIES_MANIFEST).is_none(), "the list itself is not a site file");
    }

    #[test]
    fn under_watch_nothing_is_kept_or_precompressed() {
        let dir = site();
        fs::write(dir.path().join("pkg/livedash.wasm.br"), b"br").unwrap();
        list_copies(dir.path(), &["pkg/livedash.wasm"]);
        let watched = Assets::scan(dir.path(), "pkg", true).unwrap();
        assert!(watched.inner.precompressed.is_empty(), "a rebuild may leave the copies stale");
        assert_eq!(watched.hashed_caching(), REVALIDATE);
        let built = Assets::scan(dir.path(), "pkg", false).unwrap();
        assert!(built.inner.precompressed.contains("pkg/livedash.wasm"));
        assert_eq!(built.hashed_caching(), IMMUTABLE);
    }

    #[test]
    fn an_empty_site_changes_no_url() {
        let assets = Assets::scan(Path::new("/nonexistent/site"), "pkg", false).unwrap();
        assert_eq!(assets.pkg_dir(), "pkg");
        assert_eq!(assets.url("/favicon.svg"), "/favicon.svg");
    }
}
