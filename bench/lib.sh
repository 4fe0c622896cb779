# Shared helpers for the benchmark scripts. Source it.
set -euo pipefail
bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ctl=${CHROOTCTL:-$bench_here/build/cli/chrootctl}
cache=${BENCH_CACHE:-/var/tmp/chrootctl-bench}

bench_deps() {
  local need=()
  for p in hyperfine time mmdebstrap libarchive-tools bubblewrap python3 "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  fi
  [ -x "$ctl" ] || bash "$bench_here/tools/build.sh"
}

# A Debian 12 minbase tree, built once and kept in the cache.
minbase_tree() {
  local dir=$cache/minbase
  if [ ! -e "$dir/etc/debian_version" ]; then
    rm -rf "$dir"
    mkdir -p "$cache"
    mmdebstrap --quiet --variant=minbase bookworm "$dir" >&2
  fi
  echo "$dir"
}

# hyperfine JSON -> "mean median stddev" in milliseconds
hf_stats() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f'{r["mean"]*1000:.1f} {r["median"]*1000:.1f} {r["stddev"]*1000:.1f}')
PY
}
