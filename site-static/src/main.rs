//! The static build's entry point: the app the server renders, here rendered in the browser from
//! an empty page (`index.html`), talking to the livedash server named at build time.
//!
//! Built by Trunk (`Trunk.toml`): `LIVEDASH_SERVER_URL=https://api.example.com trunk build
//! --release` writes a folder of static files for a CDN or another web server of the same site.

/// Where the livedash server is: `LIVEDASH_SERVER_URL` when this was built (Trunk passes its
/// environment on to cargo), else a server on this machine at the default address.
const SERVER_URL: &str = match option_env!("LIVEDASH_SERVER_URL") {
    Some(url) => url,
    None => "http://127.0.0.1:3000",
};

fn main() {
    console_error_panic_hook::set_once();
    app::http::use_server(SERVER_URL);
    leptos::mount::mount_to_body(app::App);
}
