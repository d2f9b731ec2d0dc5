#!/usr/bin/env bash
# Builds the Debian packages from the finished build (`cpack -G DEB`) and checks
# them: file names carry CMake's project version; shrink_*.deb holds the command
# line and its Depends names the package of every shared library the binary loads
# that is not part of the base system (LibTorch, protobuf, oneDNN, ...);
# shrink-dev_*.deb holds the library, headers and CMake package; the unpacked
# binary runs and reports the same version.
# Usage: deb_test.sh BUILD_DIR
set -euo pipefail
build_dir=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/shrink-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "deb_test: $*"; exit 1; }

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build_dir/CMakeCache.txt")
[[ -n "$version" ]] || fail "no CMAKE_PROJECT_VERSION in $build_dir/CMakeCache.txt"
(cd "$build_dir" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack failed"; }
deb="$work/out/shrink_${version}_amd64.deb"
dev="$work/out/shrink-dev_${version}_amd64.deb"
[[ -f "$deb" && -f "$dev" ]] || fail "expected $(basename "$deb") and $(basename "$dev"), got: $(ls "$work/out")"

[[ $(dpkg-deb -f "$deb" Package) == shrink && $(dpkg-deb -f "$deb" Version) == "$version" ]] ||
  fail "$deb: Package/Version are $(dpkg-deb -f "$deb" Package Version | tr '\n' ' ')"
depends=$(dpkg-deb -f "$deb" Depends)
echo "deb_test: shrink Depends: $depends"
deb_files=$(dpkg-deb -c "$deb")
grep -q ' ./usr/bin/shrink$' <<<"$deb_files" || fail "$deb has no /usr/bin/shrink"
grep -qE '\.(a|h)$' <<<"$deb_files" && fail "$deb holds development files"

# Each library the binary itself needs (its DT_NEEDED entries; theirs come through
# their own packages' Depends) must come from a package named in Depends, or from
# the base system (libc6 and friends: Priority required).
binary="$build_dir/shrink"
depends_names=" $(sed -E 's/ \([^)]*\)//g; s/,/ /g' <<<"$depends") "
while read -r soname; do
  lib=$(ldd "$binary" | awk -v n="$soname" '$1 == n && $3 ~ /^\// { print $3 }')
  [[ -n "$lib" ]] || fail "shrink needs $soname, which does not resolve"
  owner=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1 || true)
  [[ -n "$owner" ]] || owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1 || true)
  [[ -n "$owner" ]] || fail "$lib (needed by shrink) belongs to no package"
  [[ "$depends_names" == *" $owner "* ]] && continue
  [[ $(dpkg-query -W -f='${Priority}' "$owner") == required ]] && continue
  fail "shrink needs $lib from $owner, which Depends does not name"
done < <(objdump -p "$binary" | awk '$1 == "NEEDED" { print $2 }')
for wanted in libtorch libprotobuf libdnnl; do
  grep -q "$wanted" <<<"$depends" || fail "Depends names no $wanted package"
done

dev_files=$(dpkg-deb -c "$dev")
grep -q ' ./usr/lib/cmake/shrink/shrinkConfig.cmake$' <<<"$dev_files" || fail "$dev has no shrinkConfig.cmake"
grep -q ' ./usr/include/shrink/exec/session.h$' <<<"$dev_files" || fail "$dev has no headers"
grep -qE ' ./usr/lib/(x86_64-linux-gnu/)?libshrink\.a$' <<<"$dev_files" || fail "$dev has no libshrink.a"
echo "deb_test: shrink-dev Depends: $(dpkg-deb -f "$dev" Depends)"

dpkg-deb -x "$deb" "$work/unpacked"
# The executable where the package's own file list puts it.
packaged="$work/unpacked/$(awk '$1 ~ /^-..x/ && $NF ~ /\/bin\/shrink$/ { sub(/^\.\//, "", $NF); print $NF; exit }' <<<"$deb_files")"
[[ -x "$packaged" ]] || fail "$deb lists no executable bin/shrink"
"$packaged" --version | grep -q "^shrink $version (commit " ||
  fail "the packaged binary says: $("$packaged" --version)"
"$packaged" zoo >/dev/null || fail "the packaged shrink zoo failed"
echo "deb_test: $(basename "$deb") ($(stat -c %s "$deb") bytes) and $(basename "$dev") ($(stat -c %s "$dev") bytes) OK"
