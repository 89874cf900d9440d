#!/usr/bin/env bash
# The Debian sid root in which CI runs the suite on CPython 3.13, 3.14, 3.15 and the debug builds
# of 3.14 and 3.15. Their packages need a newer glibc than this Debian 12 host has, so they live
# in a root of their own (made once with debootstrap, reused after) and run through chroot.
#
#   scripts/sid-root.sh create      make the root if it is missing or incomplete (needs root, apt)
#   scripts/sid-root.sh path        print the root's directory if it is ready, else fail quietly
#   scripts/sid-root.sh run CMD...  run CMD inside it, with the .NET SDK, this repository, NuGet's
#                                   package cache and pyenv's CPythons at the same paths as here
#
# ASYNCIORAW_SID_ROOT overrides the location (default /var/cache/asyncioraw/sid-root). It lies
# outside the repository on purpose: 1.6 GB that no build or `git clean` should touch.
set -euo pipefail

root=${ASYNCIORAW_SID_ROOT:-/var/cache/asyncioraw/sid-root}
repo=$(cd "$(dirname "$0")/.." && pwd -P)
# The shared libraries and headers of every CPython sid has that we test, the debug builds of the
# newest two (Py_DEBUG: libpython3.Xd.so), executables so that child processes and discovery can
# ask a real python, and g++ for the native-headers check against sid's own glibc headers.
packages=libpython3.13,libpython3.13-dev,python3.13,libpython3.14,libpython3.14-dev,libpython3.14-dbg,python3.14,python3.14-dbg,libpython3.15,libpython3.15-dev,libpython3.15-dbg,python3.15,python3.15-dbg,g++
marker="$root/.asyncioraw-ready"

ready() { [ -f "$marker" ] && [ "$(cat "$marker")" = "$packages" ]; }

create() {
  if ready; then echo "sid root: $root (reused)"; return 0; fi
  if [ "$(id -u)" != 0 ]; then echo "sid root: not created (needs root for debootstrap and chroot)" >&2; return 1; fi
  if ! command -v debootstrap >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >&2 ||
      { echo "sid root: not created (debootstrap could not be installed)" >&2; return 1; }
  fi
  # Built beside its final place and renamed when complete, so an interrupted run never leaves
  # a half-made root that looks ready.
  local tmp="$root.partial"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$root")"
  echo "sid root: creating $root with debootstrap (about a minute and 1.6 GB)"
  if ! debootstrap --variant=minbase --include="$packages" sid "$tmp" http://deb.debian.org/debian > "$tmp.log" 2>&1; then
    echo "sid root: debootstrap failed (last lines of $tmp.log):" >&2; tail -n 15 "$tmp.log" >&2
    rm -rf "$tmp"; return 1
  fi
  printf '%s' "$packages" > "$tmp/.asyncioraw-ready"
  rm -rf "$root"
  mv "$tmp" "$root"
  rm -f "$tmp.log"
  echo "sid root: ready at $root"
}

run() {
  ready || { echo "sid root: not ready at $root (scripts/sid-root.sh create)" >&2; return 1; }
  local dotnet_dir
  dotnet_dir=$(dirname "$(readlink -f "$(command -v dotnet)")")
  # A private mount namespace: the bind mounts vanish with the command, even if it is killed.
  # A private mount namespace: the bind mounts vanish with the command, even if it is killed.
  # The command gets a clean environment; pass variables with `env NAME=value ...`.
  unshare --mount --propagation private -- bash -euo pipefail -c '
    root=$1 dotnet_dir=$2; shift 2
    bind() { [ -e "$1" ] || return 0; mkdir -p "$root$1"; mount --rbind "$1" "$root$1"; }
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    while [ "$1" != -- ]; do bind "$1"; shift; done; shift
    exec chroot "$root" /usr/bin/env -i PATH="/usr/local/bin:/usr/bin:/bin:$dotnet_dir" HOME=/root \
      DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 \
      DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 "$@"
  ' sid-root "$root" "$dotnet_dir" "$dotnet_dir" "$repo" /root/.nuget /root/.pyenv -- "$@"
}

case "${1:-}" in
  create) create ;;
  path) ready && echo "$root" ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 create | path | run COMMAND..." >&2; exit 2 ;;
esac
