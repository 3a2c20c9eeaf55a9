# Shared helpers for the .ci scripts: quiet, idempotent installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
APT_UPDATED=""

# apt_need PACKAGE...: installs the Debian packages that are missing.
apt_need() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} (apt)"
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# setting KEY: a quoted value of wasm-pack.toml (the web build's settings).
setting() { sed -n "s/^$1 *= *\"\([^\"]*\)\".*/\1/p" "$ROOT/wasm-pack.toml"; }

# The wasm-bindgen version Cargo.lock pins: the CLI must match it exactly.
locked_wasm_bindgen() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

setup_build() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first (https://rustup.rs)"; exit 1; }
  command -v cc >/dev/null || apt_need gcc libc6-dev   # the linker rustc calls, and ring's C code
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  local want; want="$(locked_wasm_bindgen)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    echo "installing wasm-bindgen-cli $want (cargo, a few minutes)"
    cargo install -q wasm-bindgen-cli --version "$want"
  fi
  command -v wasm-pack >/dev/null || { echo "installing wasm-pack (cargo, a few minutes)"; cargo install -q wasm-pack --version 0.15.1; }
  command -v python3 >/dev/null || apt_need python3
  setup_node
  # binaryen's wasm-opt from npm (.ci/tools), pinned by its lockfile. Debian's binaryen 108
  # breaks our wasm (see wasm-pack.toml).
  npm_ci "$ROOT/.ci/tools"
}

# setup_node: Node.js 20 or newer (playwright-core and binaryen's npm build need it).
setup_node() {
  command -v node >/dev/null || apt_need nodejs npm
  local major; major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || { echo "Node.js $major found; the build and browser tests need Node.js 20 or newer"; exit 1; }
}

# npm_ci DIR: installs DIR's npm packages exactly as its lockfile says, again only when the
# lockfile changed since the last install.
npm_ci() {
  if ! cmp -s "$1/package-lock.json" "$1/node_modules/.installed-lock"; then
    (cd "$1" && npm ci --silent --no-audit --no-fund && cp package-lock.json node_modules/.installed-lock)
  fi
}

setup_test() {
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
  # CHROMIUM=/path/to/chrome uses that browser instead of Debian's (Ubuntu's package is a snap stub).
  [ -n "${CHROMIUM:-}" ] || apt_need chromium chromium-driver
  apt_need mesa-vulkan-drivers
  setup_node
  npm_ci "$ROOT/tests/e2e"
}
