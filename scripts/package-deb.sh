#!/usr/bin/env bash
# Build the tepui Debian package with plain dpkg-deb (no cargo-deb needed).
#
#   scripts/package-deb.sh [--profile release|debug] [--out DIR] [--bin PATH]
#
#   --profile  which cargo profile to build and package (default release)
#   --out      where the .deb goes (default <target dir>/debian)
#   --bin      package this tepui binary instead of building one (tests use the debug build)
#
# The file list is packaging/deb/assets, the control fields packaging/deb/control, the
# maintainer scripts packaging/deb/maintainer-scripts/. crates/tepui/Cargo.toml's
# [package.metadata.deb] describes the same package for cargo-deb; the two must agree, and
# tests/python/test_packaging.py checks that they do.
#
# Version: the workspace version (Cargo.toml [workspace.package]), no Debian revision.
# Depends: computed from the binary by dpkg-shlibdeps, without libgcc-s1 (as cargo-deb's "$auto").
# Prints the path of the .deb on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEB_DIR="$ROOT/packaging/deb"

die() {
  echo "package-deb.sh: $*" >&2
  exit 2
}

profile=release
out=
bin=
while [ "$#" -gt 0 ]; do
  case "$1" in
    --profile) [ "$#" -ge 2 ] || die "--profile needs a value (release or debug)"; profile="$2"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --out) [ "$#" -ge 2 ] || die "--out needs a directory"; out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --bin) [ "$#" -ge 2 ] || die "--bin needs a path"; bin="$2"; shift 2 ;;
    --bin=*) bin="${1#*=}"; shift ;;
    -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
case "$profile" in
  release | debug) ;;
  *) die "--profile must be release or debug, not '$profile'" ;;
esac
for tool in dpkg-deb dpkg-shlibdeps dpkg strip; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian packages dpkg, dpkg-dev, binutils)"
done

target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ -z "$bin" ]; then
  if [ "$profile" = release ]; then
    (cd "$ROOT" && cargo build --release -p tepui --bin tepui) >&2
  else
    (cd "$ROOT" && cargo build -p tepui --bin tepui) >&2
  fi
  bin="$target_dir/$profile/tepui"
fi
[ -x "$bin" ] || die "--bin $bin: not an executable file"
out="${out:-$target_dir/debian}"
mkdir -p "$out"

# The version of [workspace.package] in the root Cargo.toml.
version="$(awk '
  /^\[/ { in_section = ($0 == "[workspace.package]") }
  in_section && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }' "$ROOT/Cargo.toml")"
[ -n "$version" ] || die "no version in [workspace.package] of $ROOT/Cargo.toml"
arch="$(dpkg --print-architecture)"

umask 022
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"
mkdir -p "$stage/DEBIAN"

# Assets: `source destination mode`; target/release/tepui means the binary being packaged.
conffiles=()
line_number=0
while read -r source dest mode extra; do
  line_number=$((line_number + 1))
  case "$source" in '' | '#'*) continue ;; esac
  [ -n "$mode" ] && [ -z "$extra" ] ||
    die "packaging/deb/assets line $line_number: expected 'source destination mode'"
  case "$mode" in [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *)
    die "packaging/deb/assets line $line_number: mode '$mode' is not octal" ;;
  esac
  case "$dest" in /* | *..*) die "packaging/deb/assets line $line_number: destination '$dest' must be relative, without '..'" ;; esac
  if [ "$source" = target/release/tepui ]; then
    from="$bin"
  else
    from="$ROOT/$source"
  fi
  [ -f "$from" ] || die "packaging/deb/assets line $line_number: no file $from"
  install -D -m "$mode" "$from" "$stage/$dest"
  # The packaged binary carries no debug info (as dh_strip does): 110 MB with the release
  # profile's line tables, about 19 MB without. Function symbols stay, so backtraces name them.
  if [ "$from" = "$bin" ]; then strip --strip-debug "$stage/$dest"; fi
  case "$dest" in etc/*) conffiles+=("/$dest") ;; esac
done <"$DEB_DIR/assets"

if [ "${#conffiles[@]}" -gt 0 ]; then
  printf '%s\n' "${conffiles[@]}" >"$stage/DEBIAN/conffiles"
fi
for script in "$DEB_DIR"/maintainer-scripts/*; do
  install -m 755 "$script" "$stage/DEBIAN/$(basename "$script")"
done

# Depends from the shared libraries the binary links (dpkg-shlibdeps wants a debian/control).
shlibs_dir="$stage.shlibs"
mkdir -p "$shlibs_dir/debian"
trap 'rm -rf "$stage" "$shlibs_dir"' EXIT
printf 'Source: tepui\n\nPackage: tepui\nArchitecture: any\n' >"$shlibs_dir/debian/control"
# (Its warning that the binary is not yet installed in a package tree is expected here.)
if ! shlibs="$(cd "$shlibs_dir" && dpkg-shlibdeps -O -e "$stage/usr/bin/tepui" 2>"$shlibs_dir/stderr")"; then
  cat "$shlibs_dir/stderr" >&2
  die "dpkg-shlibdeps could not compute Depends for $bin"
fi
# libgcc-s1 is left out as cargo-deb's "$auto" leaves it out: it is always installed (priority
# required), and both builds must give the same Depends.
depends="$(printf '%s\n' "$shlibs" | sed -n 's/^shlibs:Depends=//p' |
  tr ',' '\n' | sed 's/^ *//' | { grep -v '^libgcc' || true; } | paste -sd, - | sed 's/,/, /g')"

# cargo-deb's estimate, so both builds agree: each file's size in KiB, rounded up, plus 1 KiB.
installed_kb="$(find "$stage" -path "$stage/DEBIAN" -prune -o -type f -printf '%s\n' |
  awk '{ kb += int(($1 + 2047) / 1024) } END { print kb + 0 }')"
{
  # cargo-deb's field order: Package, what only the build knows, the fixed fields, the rest.
  grep -E '^Package:' "$DEB_DIR/control"
  echo "Version: $version"
  echo "Architecture: $arch"
  grep -E '^(Section|Priority|Maintainer):' "$DEB_DIR/control"
  echo "Installed-Size: $installed_kb"
  if [ -n "$depends" ]; then echo "Depends: $depends"; fi
  grep -vE '^(Package|Section|Priority|Maintainer):' "$DEB_DIR/control"
} >"$stage/DEBIAN/control"

# A debug binary is hundreds of MB: compress it lightly; release packages get xz.
if [ "$profile" = release ]; then
  compression=(-Zxz)
else
  compression=(-Zgzip -z1)
fi
deb="$out/tepui_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compression[@]}" --build "$stage" "$deb" >&2
echo "$deb"
