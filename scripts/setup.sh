#!/usr/bin/env bash
# Set-up for a fresh machine of this project's kind (Debian, .NET SDK, pyenv CPythons):
# restores and builds the solution, then runs the sample that embeds Python.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build AsyncioRaw.sln
dotnet run --no-build --project samples/Hello
