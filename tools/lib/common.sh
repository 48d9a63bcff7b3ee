# Shared by tools/run and tools/test: install what is missing, build.
# Sourced, not run.

WSGW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Debian packages the build, the tests and the embedded NATS need.
WSGW_PACKAGES=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config
  libboost1.81-dev libboost-json1.81-dev libssl-dev libtomlplusplus-dev
  libnats-dev nats-server libluajit-5.1-dev
  googletest libgtest-dev libgmock-dev
  python3 python3-websockets openssl
)

# Installs the packages above that are not installed yet (needs root or sudo).
wsgw_install_deps() {
  local missing=()
  local p
  for p in "${WSGW_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "wsgw: installing missing packages: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The JavaScript client's tests (clients/js): Debian's chromium, node and npm
# when there is no node at all (Debian's nodejs; the machines ship Node 20),
# then `npm ci` from the lockfile whenever it changed. Any failure, a registry
# that cannot be reached included, stops the caller (set -e): the JS tests
# are never skipped silently.
wsgw_install_js_deps() {
  local js="$WSGW_ROOT/clients/js"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  local missing=()
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  [ -x /usr/lib/chromium/chromium ] || [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "wsgw: installing missing packages: ${missing[*]}" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 18 ]; then
    echo "wsgw: node $(node --version) is too old for clients/js (needs 18 or later, 20 supported)" >&2
    return 1
  fi
  if ! cmp -s "$js/package-lock.json" "$js/node_modules/.wsgw-installed-lock" 2>/dev/null; then
    echo "wsgw: npm ci in clients/js" >&2
    (cd "$js" && npm ci --no-audit --no-fund) || {
      echo "wsgw: npm ci failed in clients/js (is the npm registry reachable?)" >&2
      return 1
    }
    cp "$js/package-lock.json" "$js/node_modules/.wsgw-installed-lock"
  fi
}

# wsgw_build DIR [cmake args...] [-- targets...]: configures and builds DIR
# (every target, or only the ones after --).
wsgw_build() {
  local dir="$1"
  shift
  local args=() targets=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    args+=("$1")
    shift
  done
  if [ "${1:-}" = "--" ]; then
    shift
    targets=(--target "$@")
  fi
  cmake -S "$WSGW_ROOT" -B "$dir" -G Ninja "${args[@]}" >/dev/null
  cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
}

# Makes config/dev.secret (the HS256 key of the shipped development config)
# if it does not exist. It is random per checkout and never committed.
wsgw_dev_secret() {
  local f="$WSGW_ROOT/config/dev.secret"
  if [ ! -s "$f" ]; then
    umask 077
    openssl rand -hex 32 >"$f"
    echo "wsgw: generated $f (development HS256 key)" >&2
  fi
}
