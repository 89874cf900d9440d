#!/usr/bin/env bash
# The NuGet packages as a user gets them. Packs the four libraries (src/*) into a folder feed with
# a version unique to this run, checks what each package carries (description, MIT licence and
# LICENSE, README, XML docs, the .snupkg with its PDB, dependencies), then makes a fresh console
# app with `dotnet new console`, adds AsyncioRaw.Asyncio from the feed with `dotnet add package`,
# builds and runs it and checks its output; and a fresh `dotnet new nunit` project with
# AsyncioRaw.Testing whose [AsyncioTest] tests `dotnet test` runs.
#
# Nothing from the repository's build is reused: the pack builds into an artifacts folder of its
# own (.artifacts/package-test.<pid>, ignored by git), and the consumers restore into a private
# NUGET_PACKAGES folder from the feed and nuget.org only, so neither a stale copy in
# ~/.nuget/packages nor this repository's bin/obj can stand in for the packages. Everything is
# deleted afterwards (ASYNCIORAW_PACKAGE_KEEP=1 keeps it to look at). Prints one line per check,
# "[package] ...", and a last line "package tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)

work=$(mktemp -d "${TMPDIR:-/tmp}/asyncioraw-package.XXXXXX")
# The pack's bin/obj: inside the repository (ignored by git) so that CI's path map turns them into
# /_/ like the sources, and apart from the repository's own build.
artifacts=$repo/.artifacts/package-test.$$
if [ -n "${ASYNCIORAW_PACKAGE_KEEP:-}" ]; then
  echo "keeping $work and $artifacts"
else
  trap 'rm -rf "$work" "$artifacts"; rmdir "$repo/.artifacts" 2>/dev/null' EXIT
fi
feed=$work/feed
passed=0; failed=0

ok() { passed=$((passed + 1)); echo "[package] $1"; }
bad() { failed=$((failed + 1)); echo "[package] FAILED: $1"; }
finish() { echo "package tests: $passed passed, $failed failed"; [ "$failed" = 0 ]; exit; }

prefix=$(sed -nE 's|.*<VersionPrefix>([^<]+)</VersionPrefix>.*|\1|p' src/Directory.Build.props | head -n 1)
version=${prefix:-0.0.0}-ci.$(date +%s).$$
packages=(AsyncioRaw.Interop AsyncioRaw.Asyncio AsyncioRaw.Testing AsyncioRaw.Module)

# 1. Pack, as a CI release build would (CI=true: ContinuousIntegrationBuild, /_/ source paths).
start=$(date +%s)
if CI=true dotnet pack AsyncioRaw.sln -c Release -o "$feed" -p:Version="$version" \
     --artifacts-path "$artifacts" > "$work/pack.log" 2>&1; then
  ok "pack $version: $(ls "$feed"/*.nupkg 2>/dev/null | wc -l) packages, $(ls "$feed"/*.snupkg 2>/dev/null | wc -l) symbol packages in $(( $(date +%s) - start )) s"
else
  grep -E "error|warning" "$work/pack.log" | sort -u | head -n 30
  bad "dotnet pack AsyncioRaw.sln"
  finish
fi
expected_files=$(for id in "${packages[@]}"; do echo "$id.$version.nupkg"; echo "$id.$version.snupkg"; done | sort)
unexpected=$(comm -13 <(echo "$expected_files") <(ls "$feed" | sort) | tr '\n' ' ')
[ -z "$unexpected" ] && ok "the feed holds only the four libraries (tests, samples, bench, native-headers are not packable)" \
  || bad "unexpected packages in the feed: $unexpected"

# 2. What each package carries. The nuspec is read as XML, the archives' listings as names.
for id in "${packages[@]}"; do
  nupkg=$feed/$id.$version.nupkg snupkg=$feed/$id.$version.snupkg
  if [ ! -f "$nupkg" ]; then bad "$id: no $id.$version.nupkg"; continue; fi
  problems=$(python3 - "$nupkg" "$snupkg" "$id" "$version" "$repo" "$work" <<'EOF'
import sys, uuid, zipfile, xml.etree.ElementTree as ET
nupkg, snupkg, pkg, version, repo, work = sys.argv[1:]
problems = []
with zipfile.ZipFile(nupkg) as z:
    names = set(z.namelist())
    meta = ET.fromstring(z.read(f"{pkg}.nuspec")).find("{*}metadata")
    text = lambda tag: (meta.findtext("{*}" + tag) or "").strip()
    description = text("description")
    if len(description) < 40 or description == "Package Description":
        problems.append(f"description {description!r}")
    licence = meta.find("{*}license")
    if licence is None or licence.get("type") != "expression" or (licence.text or "").strip() != "MIT":
        problems.append("licence expression is not MIT")
    if "LICENSE" not in names or b"MIT License" not in z.read("LICENSE"):
        problems.append("no LICENSE file")
    readme = text("readme")
    if readme != "README.md" or readme not in names:
        problems.append(f"readme {readme!r} (files: README.md {'present' if 'README.md' in names else 'missing'})")
    elif f"# {pkg}".encode() not in z.read(readme):
        problems.append("README.md is not this package's")
    for tag in ("authors", "copyright", "tags"):
        if not text(tag):
            problems.append(f"no {tag}")
    for f in (f"lib/net10.0/{pkg}.dll", f"lib/net10.0/{pkg}.xml"):
        if f not in names:
            problems.append(f"no {f}")
    dll = z.read(f"lib/net10.0/{pkg}.dll") if f"lib/net10.0/{pkg}.dll" in names else b""
    if pkg == "AsyncioRaw.Module":
        for f in ("build/AsyncioRaw.Module.targets", "build/make_wheel.py"):
            if f not in names:
                problems.append(f"no {f}")
    deps = {d.get("id"): d.get("version") for d in meta.findall(".//{*}dependency")}
    want = {"AsyncioRaw.Interop": {}, "AsyncioRaw.Asyncio": {"AsyncioRaw.Interop": version},
            "AsyncioRaw.Testing": {"AsyncioRaw.Asyncio": version, "NUnit": None},
            "AsyncioRaw.Module": {"AsyncioRaw.Asyncio": version}}[pkg]
    for dep, v in want.items():
        if dep not in deps or (v is not None and deps[dep] != v):
            problems.append(f"dependency {dep} {v or ''}: got {deps.get(dep)}")
    extra = set(deps) - set(want)
    if extra:
        problems.append(f"unexpected dependencies {sorted(extra)}")
# Deterministic CI build: the DLL names its PDB by a /_/ path, and no path of this machine is left
# in either file. The PDB embeds the sources (the EmbeddedSource record's GUID is in its #GUID heap).
embedded_source = uuid.UUID("0e8a571b-6926-466e-b4ad-8ab04611f5fe").bytes_le
try:
    with zipfile.ZipFile(snupkg) as z:
        pdb = z.read(f"lib/net10.0/{pkg}.pdb")
    if f"/_/.artifacts/".encode() not in dll:
        problems.append("the DLL's PDB path is not mapped to /_/ (ContinuousIntegrationBuild)")
    for path in (repo, work):
        if path.encode() in dll or path.encode() in pdb:
            problems.append(f"{path} is written into the DLL or PDB")
    if embedded_source not in pdb:
        problems.append("the PDB embeds no sources")
except FileNotFoundError:
    problems.append("no .snupkg")
except KeyError:
    problems.append(f"no lib/net10.0/{pkg}.pdb in the .snupkg")
print("; ".join(problems))
EOF
  )
  if [ -z "$problems" ]; then
    ok "$id: description, MIT licence and LICENSE, README.md, XML docs, dependencies; .snupkg with a deterministic PDB (/_/ paths, sources embedded)"
  else
    bad "$id: $problems"
  fi
done

# The consumers see only the feed and nuget.org, and restore into a cache of their own.
export NUGET_PACKAGES=$work/nuget-packages
cat > "$work/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
</configuration>
EOF

# Where the consumer's restore took a package from: the feed's copy, at this run's version.
from_feed() {
  local id=$1 dir; dir=$NUGET_PACKAGES/$(tr 'A-Z' 'a-z' <<<"$id")/$version
  [ -f "$dir/.nupkg.metadata" ] && grep -q "\"source\": \"$feed\"" "$dir/.nupkg.metadata"
}

# 3. A console app, made as a user makes one.
app=$work/Consumer
start=$(date +%s)
if dotnet new console -o "$app" --no-restore > "$work/new.log" 2>&1 \
   && (cd "$app" && dotnet add package AsyncioRaw.Asyncio --version "$version") > "$work/add.log" 2>&1; then
  if from_feed AsyncioRaw.Asyncio && from_feed AsyncioRaw.Interop; then
    ok "dotnet new console + dotnet add package AsyncioRaw.Asyncio $version: it and AsyncioRaw.Interop restored from the local feed"
  else
    bad "the console app did not restore AsyncioRaw.Asyncio and AsyncioRaw.Interop $version from the local feed"
  fi
  cat > "$app/Program.cs" <<'EOF'
using AsyncioRaw;

PythonRuntime.Initialize();
Console.WriteLine($"python {PythonLibrary.Version} found by {PythonLibrary.FoundBy}");

using var globals = Py.Run("""
    import asyncio

    def scale(text, times):
        return f"{text}:{len(text) * times}"

    async def combine(fetch, word):
        await asyncio.sleep(0.01)
        sizes = await asyncio.gather(fetch(word), fetch(word + word))
        return sum(sizes)
    """);

// A Python function called with typed arguments and result.
using var scale = globals["scale"];
Console.WriteLine($"scale: {scale.Call<string, long, string>("abc", 7)}");

// An event loop on this thread; Python awaits asyncio.sleep and a .NET async function.
long total = Asyncio.Run(async cancellation =>
{
    using var fetch = PyFunction.CreateAsync<string, long>("fetch", async (string word, CancellationToken ct) =>
    {
        await Task.Delay(5, ct);
        return word.Length;
    });
    using var combine = globals["combine"];
    return await PyAwaitable.ToTask<long>(combine.Call(fetch, "asyncio"), cancellation);
});
Console.WriteLine($"combine: {total}");

try { Py.Eval("1 / 0").Dispose(); }
catch (PythonException e) { Console.WriteLine($"caught: {e.PythonTypeName}: {e.PythonMessage}"); }
Console.WriteLine("done");
EOF
  if (cd "$app" && dotnet build -c Release) > "$work/build.log" 2>&1; then
    warnings=$(grep -oE "[0-9]+ Warning\(s\)" "$work/build.log" | tail -n 1)
    ok "the console app builds (${warnings:-warnings not reported})"
    if (cd "$app" && timeout 120 dotnet run -c Release --no-build) > "$work/run.log" 2>&1; then
      expected="scale: abc:21
combine: 21
caught: ZeroDivisionError: division by zero
done"
      if [ "$(grep -vE '^python ' "$work/run.log")" = "$expected" ] && grep -qE "^python 3\.[0-9]+" "$work/run.log"; then
        ok "the console app runs: $(head -n 1 "$work/run.log"); typed call, Asyncio.Run with asyncio.sleep and a .NET async function, PythonException ($(( $(date +%s) - start )) s)"
      else
        bad "the console app printed:"; sed 's/^/    /' "$work/run.log"
      fi
    else
      bad "the console app failed to run:"; tail -n 30 "$work/run.log"
    fi
  else
    bad "the console app does not build:"; grep -E "error|warning" "$work/build.log" | sort -u | head -n 30
  fi
else
  bad "dotnet new console / dotnet add package AsyncioRaw.Asyncio $version:"; tail -n 30 "$work/new.log" "$work/add.log"
fi

# 4. An NUnit project, from the SDK's template, with AsyncioRaw.Testing.
tests=$work/ConsumerTests
start=$(date +%s)
if dotnet new nunit -o "$tests" --no-restore > "$work/new-tests.log" 2>&1 \
   && (cd "$tests" && dotnet add package AsyncioRaw.Testing --version "$version") > "$work/add-tests.log" 2>&1; then
  rm -f "$tests/UnitTest1.cs"
  cat > "$tests/AsyncioTests.cs" <<'EOF'
using AsyncioRaw;
using AsyncioRaw.Testing;

namespace ConsumerTests;

public class AsyncioTests
{
    [AsyncioTest, CancelAfter(30_000)]
    public async Task PythonAwaitsDotNet(CancellationToken ct)
    {
        using var globals = Py.Run("import asyncio\nasync def twice(f, x):\n    await asyncio.sleep(0.01)\n    return 2 * await f(x)\n");
        using var f = PyFunction.CreateAsync<long, long>("f", async (long x, CancellationToken token) =>
        {
            await Task.Delay(5, token);
            return x + 1;
        });
        using var twice = globals["twice"];
        Assert.That(await PyAwaitable.ToTask<long>(twice.Call(f, 20), ct), Is.EqualTo(42));
    }

    // NUnit.Analyzers (in the template) does not know that [AsyncioTest] supplies the EventLoop.
#pragma warning disable NUnit1027
    [AsyncioTest]
    public void BlocksOffTheLoop(EventLoop loop)
    {
        Thread.Sleep(10);                        // the loop keeps running meanwhile
        Assert.That(loop, Is.Not.Null);
    }
#pragma warning restore NUnit1027

    [TestCase(2, 3, ExpectedResult = 5L), AsyncioTest]
    public async Task<long> Adds(int a, int b)
    {
        using var globals = Py.Run("import asyncio\nasync def add(a, b):\n    await asyncio.sleep(0)\n    return a + b\n");
        using var add = globals["add"];
        return await PyAwaitable.ToTask<long>(add.Call(a, b));
    }
}
EOF
  if (cd "$tests" && timeout 300 dotnet test) > "$work/test.log" 2>&1 \
     && grep -qE "Passed! +- +Failed: +0, +Passed: +3," "$work/test.log"; then
    if from_feed AsyncioRaw.Testing; then
      ok "dotnet new nunit + AsyncioRaw.Testing $version from the feed: dotnet test runs 3 [AsyncioTest] tests (async with [CancelAfter], sync with EventLoop, [TestCase]), 3 passed ($(( $(date +%s) - start )) s)"
    else
      bad "the NUnit project passed but did not restore AsyncioRaw.Testing $version from the local feed"
    fi
  else
    bad "dotnet test of the NUnit consumer project:"; grep -E "error|Failed|Passed!|Error Message" -A4 "$work/test.log" | head -n 40
  fi
else
  bad "dotnet new nunit / dotnet add package AsyncioRaw.Testing $version:"; tail -n 30 "$work/new-tests.log" "$work/add-tests.log"
fi

finish
