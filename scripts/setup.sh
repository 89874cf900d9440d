#!/usr/bin/env bash
# Set-up for a fresh machine of this project's kind (Debian, .NET SDK, pyenv CPythons):
# installs Debian's uvloop for Debian's Python 3.11 (a third-party event loop the tests run
# the bridge on), makes the Debian sid root in which CI tests CPython 3.13-3.15 and their debug
# builds (scripts/sid-root.sh; optional), restores and builds the solution, runs the sample
# that embeds Python, and builds the sample Python module written in C# and imports it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3.11 -c 'import uvloop' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # Optional: without it only the uvloop test is skipped, so a mirror hiccup must not stop set-up.
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-uvloop; } ||
      echo "note: could not install python3-uvloop; the uvloop test will be skipped" >&2
  else
    echo "note: python3-uvloop is not installed (needs root and apt); the uvloop test will be skipped" >&2
  fi
fi
# NativeAOT links the sample Python module with the system's C toolchain (gcc or clang) and zlib.
if ! command -v gcc >/dev/null || [ ! -f /usr/include/zlib.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc zlib1g-dev
  else
    echo "note: NativeAOT needs gcc (or clang) and zlib1g-dev; install them to build samples/HashModule" >&2
  fi
fi
# Optional too: without the root CI skips the sid versions with a line saying so.
bash scripts/sid-root.sh create ||
  echo "note: the Debian sid root was not created; CI will skip CPython 3.14, 3.15 and the debug builds" >&2
dotnet build AsyncioRaw.sln
dotnet run --no-build --project samples/Hello
# The other direction: a Python module written in C# (NativeAOT), imported by a plain python3.
dotnet publish samples/HashModule -c Release -r linux-x64 -p:PublishAot=true
PYTHONPATH=samples/HashModule/bin/Release/net10.0/linux-x64/publish python3 samples/HashModule/demo.py
