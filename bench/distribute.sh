#!/usr/bin/env bash
# Distributing images to worker nodes, in one run (root; needs the Debian archive):
#  - build debian12 with `chrootctl build debian12 --register DEBIAN12`, sign it, export it;
#  - `chrootctl import` of that export against `tar --zstd -xf` of the same archive plus
#    `chrootctl manifest check` of what tar unpacked (target: import within 1.5x), both timed
#    by hyperfine in the same run, with a fresh destination and no dirty pages (`sync`) before
#    every run (import syncs what it wrote before it registers the image; tar does not);
#  - `chrootctl resolve` of the signed image with require_signature = true (target: under 5 ms);
#  - publish DEBIAN12, build a second version that installs one more small package (a recipe
#    deriving from `image = "DEBIAN12"`), register it as DEBIAN12, sign and publish it: the share
#    of its files hard-linked to the first version (target: over 95%).
# With BASELINE=/path/to/another/chrootctl, its `import` of the same archive is timed in the
# same hyperfine run (before/after a change: target within 1.1x).
# Prints a markdown table for docs/benchmarks.md. RUNS (default 10) timed runs of each command.
source "$(dirname "$0")/lib.sh"
bench_deps zstd
[ "$(id -u)" = 0 ] || { echo "bench/distribute.sh needs root" >&2; exit 1; }
work=$(mktemp -d /var/tmp/chrootctl-bench-distribute.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
store=$work/store
runs=${RUNS:-10}

# Keys and the two configurations: the image host (signatures not required, so the fresh build
# can be registered before it is signed) and a worker node (require_signature = true).
mkdir -p "$work/etc/trusted.d"
"$ctl" key generate --out "$work/keys" >/dev/null
key=$(ls "$work"/keys/*.key)
cp "$work"/keys/*.pub "$work/etc/trusted.d/"
printf 'trusted_keys = "%s"\n' "$work/etc/trusted.d" > "$work/etc/host.toml"
printf 'trusted_keys = "%s"\nrequire_signature = true\n' "$work/etc/trusted.d" > "$work/etc/worker.toml"
host() { CHROOTCTL_CONFIG=$work/etc/host.toml "$ctl" "$@"; }
worker() { CHROOTCTL_CONFIG=$work/etc/worker.toml "$ctl" "$@"; }

echo "building debian12 (mmdebstrap; a minute or two)" >&2
host build debian12 --store "$store" --register DEBIAN12 -q >/dev/null
host sign -q DEBIAN12 --store "$store" --key "$key" >/dev/null
archive=$work/debian12.tar.zst
host export -q DEBIAN12 --store "$store" -o "$archive" >/dev/null
image=$(host resolve --store "$store" --json DEBIAN12 | python3 -c 'import json,sys; print(json.load(sys.stdin)["image"])')
entries=$(($(wc -l < "$image/manifest") - 2))
archive_mib=$(python3 -c "import os; print(f'{os.path.getsize(\"$archive\") / 2**20:.1f}')")

# Sanity: both sides of the comparison must succeed, or the timing means nothing.
worker import -q --store "$work/s2" "$archive" >/dev/null
worker resolve --store "$work/s2" DEBIAN12 >/dev/null
rm -rf "$work/s2"
mkdir "$work/t" && tar --zstd -xf "$archive" -C "$work/t" 2>/dev/null
"$ctl" manifest check -q "$work/t/root" "$work/t/manifest" >/dev/null
rm -rf "$work/t"
baseline=()
if [ -n "${BASELINE:-}" ]; then
  CHROOTCTL_CONFIG=$work/etc/worker.toml "$BASELINE" import -q --store "$work/s3" "$archive" >/dev/null
  rm -rf "$work/s3"
  baseline=(-n import_baseline "CHROOTCTL_CONFIG=$work/etc/worker.toml $BASELINE import -q --store $work/s3 $archive")
fi

echo "timing import against tar + manifest check ($runs runs each)" >&2
hyperfine --style none --runs "$runs" --export-json "$work/import.json" \
  --prepare "rm -rf $work/s2 $work/s3 $work/t; sync" \
  -n import "CHROOTCTL_CONFIG=$work/etc/worker.toml $ctl import -q --store $work/s2 $archive" \
  "${baseline[@]}" \
  -n tar_check "mkdir $work/t && tar --zstd -xf $archive -C $work/t 2>/dev/null && $ctl manifest check -q $work/t/root $work/t/manifest" \
  >/dev/null 2>&1
rm -rf "$work/s2" "$work/s3" "$work/t"
worker import -q --store "$work/s2" "$archive" >/dev/null
hyperfine --style none --warmup 5 --runs 50 --export-json "$work/resolve.json" \
  "CHROOTCTL_CONFIG=$work/etc/worker.toml $ctl resolve --store $work/s2 DEBIAN12" >/dev/null 2>&1

echo "publishing two versions" >&2
pub=$work/pub
host publish -q DEBIAN12 --store "$store" "$pub" >/dev/null
python3 - "$bench_here/recipes/debian12.toml" "$work/debian12-less.toml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
strip = text[text.index("[strip]"):text.index("[layout]")]
open(sys.argv[2], "w").write('name = "debian12-less"\n\n[base]\nimage = "DEBIAN12"\n\n[packages]\ninstall = ["less"]\n\n' + strip)
PY
host build "$work/debian12-less.toml" --store "$store" --register DEBIAN12 -q >/dev/null
host sign -q DEBIAN12 --store "$store" --key "$key" >/dev/null
host publish --json DEBIAN12 --store "$store" "$pub" > "$work/publish2.json"
worker add -q --store "$work/w" --from "$pub" >/dev/null   # sanity: a worker registers it, verified

python3 - "$work/import.json" "$work/resolve.json" "$work/publish2.json" "$entries" "$archive_mib" "$runs" <<'PY'
import json, sys
imp = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
res = json.load(open(sys.argv[2]))["results"][0]
pub = json.load(open(sys.argv[3]))
entries, mib, runs = sys.argv[4], sys.argv[5], sys.argv[6]
ms = lambda x: x * 1000
print(f"Image: the debian12 recipe ({entries} entries), signed; export {mib} MiB (pax, zstd level 3); "
      f"{runs} runs of each import command, each from an empty destination after `sync`; 50 runs of resolve.\n")
print("| command | median ms | mean ms | stddev ms |")
print("|---|---:|---:|---:|")
rows = [("`chrootctl import FILE` (signature, unpack, verify every file, register)", imp["import"])]
if "import_baseline" in imp:
    rows.append(("`chrootctl import FILE`, BASELINE binary", imp["import_baseline"]))
rows += [("`tar --zstd -xf FILE` + `chrootctl manifest check ROOT MANIFEST`", imp["tar_check"]),
         ("`chrootctl resolve NAME` (signed image, require_signature = true)", res)]
for label, r in rows:
    print(f"| {label} | {ms(r['median']):.1f} | {ms(r['mean']):.1f} | {ms(r['stddev']):.1f} |")
print()
ratio = imp["import"]["median"] / imp["tar_check"]["median"]
print(f"- import vs tar + manifest check: {ratio:.2f}x (target within 1.5x): {'met' if ratio <= 1.5 else 'NOT MET'}")
if "import_baseline" in imp:
    b = imp["import"]["median"] / imp["import_baseline"]["median"]
    print(f"- import vs the BASELINE binary's import, same run: {b:.2f}x (target within 1.1x): {'met' if b <= 1.1 else 'NOT MET'}")
r = ms(res["median"])
print(f"- resolve of a signed image: {r:.1f} ms median (target under 5 ms): {'met' if r < 5 else 'NOT MET'}")
share = pub["files_linked"] / pub["files"]
print(f"- publish of a second version (debian12 + less): {pub['files_linked']} of {pub['files']} files hard-linked to the first "
      f"({share * 100:.1f}%, target over 95%): {'met' if share > 0.95 else 'NOT MET'}; "
      f"{pub['bytes_copied'] / 2**20:.1f} MiB copied, {pub['bytes_linked'] / 2**20:.1f} MiB shared")
PY
