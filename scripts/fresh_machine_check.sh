#!/usr/bin/env bash
# Proves README's two commands work on a machine that has never seen shrink.
#
# Builds a clean Debian 12 root with debootstrap (packages from Debian's archive
# through this machine's apt configuration; nothing else is downloaded), carries
# over the host's locally added CA certificates (this network's TLS needs them:
# without them npm fails with SELF_SIGNED_CERT_IN_CHAIN), copies the checkout in
# (tracked and untracked-but-not-ignored files, and .git for the commit), and
# inside it with chroot runs, as root:
#   1. bash scripts/demo.sh     README's first command (install, build, main job)
#   2. bash scripts/test.sh     README's second command (the whole suite; CI=true)
#   3. cpack -G DEB             the Debian packages, from that build
# then installs the packages into a second clean root that has only the base
# system: apt-get install ./shrink_*.deb must bring every runtime library, and
# `shrink --version`, `shrink zoo` and `shrink info` must run; then
# ./shrink-dev_*.deb must bring what find_package(shrink) needs, and
# tests/install/consumer must build and run against /usr.
# It prints each step's result and time. It takes 15-25 minutes on 2 cores (plus about 2 for debootstrap the first time): too
# slow for CI. Run it whenever scripts/setup.sh, a find_package or a dependency changes.
#
# Usage: scripts/fresh_machine_check.sh [--work DIR] [--inner DIR] [--keep] [--steps demo,test,deb]
#   --work DIR   where the roots go on this machine (default $SHRINK_FRESH_WORK or
#                /var/tmp/shrink-fresh; several GiB)
#   --inner DIR  where the checkout, packages and checks go inside the roots
#                (default $SHRINK_FRESH_INNER or /srv/shrink)
#   --keep       keep the roots afterwards (the debootstrapped base is always kept
#                and reused: delete DIR/base to start from a new one)
set -euo pipefail
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=${SHRINK_FRESH_WORK:-/var/tmp/shrink-fresh}
inner=${SHRINK_FRESH_INNER:-/srv/shrink}
keep=0
steps=demo,test,deb
while (($#)); do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --inner) inner=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh_machine_check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "fresh_machine_check: must run as root (debootstrap, chroot)" >&2; exit 2; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
[[ "$inner" == /* ]] || { echo "fresh_machine_check: --inner must be an absolute path inside the roots" >&2; exit 2; }
checkout=$inner/checkout  # the copied checkout, in the build root
debs=$inner/debs          # the packages cpack makes there
check=$inner/check        # what the package root is given to check

results=()
started=$(date +%s)
record() { results+=("$(printf '%-44s %-6s %6ss' "$1" "$2" "$3")"); }
summary() {
  echo
  echo "== fresh_machine_check: $(git -C "$source_dir" rev-parse --short=12 HEAD 2>/dev/null || echo '?') on Debian $(cat "$work/base/etc/debian_version" 2>/dev/null)"
  printf '%s\n' "${results[@]}"
  echo "total $(( $(date +%s) - started ))s"
}
# step NAME COMMAND...: runs it, logs to $work/logs/NAME.log, records pass/fail and time.
step() {
  local name=$1; shift
  local t0=$(date +%s) log="$work/logs/$(tr -c "A-Za-z0-9._-" "_" <<<"$name").log"
  echo "== $name (log: $log)"
  if "$@" > >(tee "$log") 2>&1; then
    record "$name" pass $(( $(date +%s) - t0 ))
  else
    record "$name" FAIL $(( $(date +%s) - t0 ))
    tail -n 30 "$log" || true
    summary
    exit 1
  fi
}
mkdir -p "$work/logs"

mounted=()
mount_system() {  # ROOT: /proc, /sys, /dev (with pts and shm) and DNS for a chroot
  local root=$1
  mount -t proc proc "$root/proc"; mounted+=("$root/proc")
  mount -t sysfs sys "$root/sys"; mounted+=("$root/sys")
  mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"; mounted+=("$root/dev")
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
}
cleanup() {
  local m
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -R -l "${mounted[i]}" 2>/dev/null || true; done
  if ((keep == 0)); then rm -rf "$work/root-build" "$work/root-deb"; fi
}
trap cleanup EXIT

# The environment inside: a clean one, with the CA-bundle variables the host sets
# (every machine here points its TLS clients at the system bundle).
chroot_env=(env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive)
for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE REQUESTS_CA_BUNDLE GIT_SSL_CAINFO; do
  [[ -n "${!v:-}" ]] && chroot_env+=("$v=${!v}")
done
in_root() { local root=$1; shift; chroot "$root" "${chroot_env[@]}" bash -c "$*"; }

# The Debian archive as this machine's apt reaches it.
mirror=$(awk '/^URIs:/ && !done { print $2; done=1 }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[[ -n "$mirror" ]] || mirror=$(awk '$1 == "deb" && !done { print ($2 ~ /^\[/ ? $3 : $2); done=1 }' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

make_base() {
  command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q --no-install-recommends debootstrap; }
  rm -rf "$work/base.partial"
  debootstrap --include=ca-certificates bookworm "$work/base.partial" "$mirror"
  # The host's apt sources and local apt settings (files no package owns), so the
  # root resolves the same archive the same way.
  rm -f "$work/base.partial/etc/apt/sources.list"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources /etc/apt/apt.conf.d/*; do
    [[ -f "$f" ]] || continue
    dpkg -S "$f" >/dev/null 2>&1 && continue
    cp "$f" "$work/base.partial$f"
  done
  # Locally added CA certificates.
  if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
    cp -a /usr/local/share/ca-certificates/. "$work/base.partial/usr/local/share/ca-certificates/"
  fi
  chroot "$work/base.partial" "${chroot_env[@]}" update-ca-certificates >/dev/null
  mv "$work/base.partial" "$work/base"
}
copy_root() {  # NAME: a fresh copy of the base
  rm -rf "$work/$1"
  cp -a "$work/base" "$work/$1"
}
copy_checkout() {  # ROOT: the checkout as git sees it (no build outputs), with .git
  local dest="$1$checkout"
  mkdir -p "$dest"
  (cd "$source_dir" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$dest"
  cp -a "$source_dir/.git" "$dest/.git"
}

if [[ -f "$work/base/etc/debian_version" ]]; then
  record "debootstrap (cached base)" pass 0
else
  step "debootstrap bookworm" make_base
fi

copy_root root-build
mount_system "$work/root-build"
copy_checkout "$work/root-build"
echo "fresh root: $(chroot "$work/root-build" dpkg-query -W -f='.\n' | wc -l) packages installed"

if [[ ",$steps," == *,demo,* ]]; then
  step "README command 1: bash scripts/demo.sh" in_root "$work/root-build" "cd $checkout && bash scripts/demo.sh"
fi
if [[ ",$steps," == *,test,* ]]; then
  step "README command 2: bash scripts/test.sh" in_root "$work/root-build" "cd $checkout && CI=true bash scripts/test.sh"
fi
if [[ ",$steps," == *,deb,* ]]; then
  step "cpack -G DEB" in_root "$work/root-build" \
    "cd $checkout && bash scripts/setup.sh >/dev/null && bash scripts/build.sh >/dev/null && cd build && cpack -G DEB -B $debs && ls -l $debs/*.deb"
  copy_root root-deb
  mount_system "$work/root-deb"
  mkdir -p "$work/root-deb$check"
  cp "$work/root-build$debs"/*.deb "$work/root-deb$check/"
  cp -a "$work/root-build$checkout/tests/install/consumer" "$work/root-deb$check/consumer"
  # One of ONNX's backend test cases, wherever the build root's libonnx-testdata put it.
  case_dir=$(chroot "$work/root-build" dpkg -L libonnx-testdata | grep '/pytorch-operator/test_operator_basic$' | head -n1)
  [[ -n "$case_dir" ]] || { echo "fresh_machine_check: libonnx-testdata has no test_operator_basic" >&2; exit 1; }
  cp -a "$work/root-build$case_dir" "$work/root-deb$check/case"
  model="$work/root-build$checkout/build/demo/lenet5.onnx"
  if [[ ! -f "$model" ]]; then
    in_root "$work/root-build" "cd $checkout && mkdir -p build/demo && build/shrink train --model lenet5 --epochs 1 -o build/demo/lenet5.onnx" >/dev/null
  fi
  cp "$model" "$work/root-deb$check/lenet5.onnx"
  step "apt-get install ./shrink_*.deb (base system)" in_root "$work/root-deb" \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $check/shrink_*_amd64.deb"
  step "packaged shrink --version, zoo, info" in_root "$work/root-deb" \
    "shrink --version && shrink zoo && shrink info $check/lenet5.onnx"
  step "apt-get install ./shrink-dev_*.deb + consumer" in_root "$work/root-deb" \
    "apt-get install -y -q --no-install-recommends $check/shrink-dev_*_amd64.deb cmake g++ ninja-build make &&
     cmake -G Ninja -S $check/consumer -B $check/consumer-build -DCMAKE_BUILD_TYPE=Release &&
     ninja -C $check/consumer-build && $check/consumer-build/consumer $check/case"
fi
summary
