#!/usr/bin/env bash
# Set-up for a fresh machine of this project's kind (Debian, .NET SDK, pyenv CPythons):
# installs Debian's uvloop for Debian's Python 3.11 (a third-party event loop the tests run
# the bridge on), makes the Debian sid root in which CI tests CPython 3.13-3.15 and their debug
# builds (scripts/sid-root.sh; optional), restores and builds the solution, then runs the sample
# that embeds Python.
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
# Optional too: without the root CI skips the sid versions with a line saying so.
bash scripts/sid-root.sh create ||
  echo "note: the Debian sid root was not created; CI will skip CPython 3.14, 3.15 and the debug builds" >&2
dotnet build AsyncioRaw.sln
dotnet run --no-build --project samples/Hello
