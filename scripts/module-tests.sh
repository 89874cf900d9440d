#!/usr/bin/env bash
# Builds the sample C# module (samples/HashModule, NativeAOT) once, then runs its Python unittest
# suite on every CPython present: pyenv 3.9-3.13 (shared libpython) and Debian's /usr/bin/python3.11
# (libpython linked into the executable), plus Debian's python with uvloop when it is installed,
# and Debian sid's 3.13-3.15 and debug builds when the sid root exists (scripts/sid-root.sh).
# Then packs the module as a wheel and pip-installs it into a fresh venv (default python3 and
# Debian's). Prints one line per Python and a last line "module tests: N passed, N failed".
# Needs a C toolchain for NativeAOT's link step (gcc is enough; clang is used when present).
set -uo pipefail
cd "$(dirname "$0")/.."

publish_dir=samples/HashModule/bin/Release/net10.0/linux-x64/publish
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
passed=0; failed=0; status=0

start=$(date +%s)
if ! dotnet publish samples/HashModule -c Release -r linux-x64 -p:PublishAot=true > "$log_dir/publish.log" 2>&1 \
   || [ ! -f "$publish_dir/hashmod.so" ]; then
  tail -n 40 "$log_dir/publish.log"
  echo "module build failed"
  echo "module tests: 0 passed, 1 failed"
  exit 1
fi
echo "[build] hashmod.so published with NativeAOT in $(( $(date +%s) - start )) s"

# Reads unittest's "Ran N tests" and "OK (...)" / "FAILED (failures=a, errors=b, ...)" lines.
tally() {
  local log=$1 label=$2 ran f e s u x
  ran=$(grep -E "^Ran [0-9]+ tests?" "$log" | tail -n 1 | sed -E 's/^Ran ([0-9]+).*/\1/')
  if [ -z "$ran" ]; then
    echo "[$label] no unittest summary (crash or hang?):"; tail -n 30 "$log"
    failed=$((failed + 1)); status=1; return
  fi
  local result; result=$(grep -E "^(OK|FAILED)" "$log" | tail -n 1)
  f=$(grep -oE "failures=[0-9]+" <<<"$result" | cut -d= -f2); f=${f:-0}
  e=$(grep -oE "errors=[0-9]+" <<<"$result" | cut -d= -f2); e=${e:-0}
  s=$(grep -oE "skipped=[0-9]+" <<<"$result" | cut -d= -f2); s=${s:-0}
  x=$(grep -oE "expected failures=[0-9]+" <<<"$result" | cut -d= -f2); x=${x:-0}
  u=$(grep -oE "unexpected successes=[0-9]+" <<<"$result" | cut -d= -f2); u=${u:-0}
  local p=$((ran - f - e - s - x - u)) bad=$((f + e + u))
  passed=$((passed + p)); failed=$((failed + bad))
  echo "[$label] $p passed, $bad failed, $s skipped"
  if [ "$bad" != 0 ]; then
    status=1
    grep -E "^(FAIL|ERROR):" -A 12 "$log" | head -n 60
  fi
}

run_suite() {
  local py=$1 label=$2; shift 2
  local log="$log_dir/$(echo "$label" | tr -c 'A-Za-z0-9.' '_').log"
  env "$@" PYTHONPATH="$publish_dir" timeout 600 "$py" -m unittest discover -s samples/HashModule/tests -v > "$log" 2>&1
  tally "$log" "$label"
}

pythons=()
for minor in 9 10 11 12 13; do
  for py in /root/.pyenv/versions/3.$minor.*/bin/python3.$minor; do
    [ -x "$py" ] && pythons+=("$py")
  done
done
[ -x /usr/bin/python3.11 ] && pythons+=(/usr/bin/python3.11)

for py in "${pythons[@]}"; do
  run_suite "$py" "$("$py" -c 'import platform; print(platform.python_version())') $py"
done
if [ -x /usr/bin/python3.11 ] && /usr/bin/python3.11 -c "import uvloop" 2>/dev/null; then
  run_suite /usr/bin/python3.11 "$(/usr/bin/python3.11 -c 'import platform, uvloop; print(platform.python_version(), "uvloop", uvloop.__version__)') /usr/bin/python3.11" HASHMOD_LOOP=uvloop
fi

# Debian sid's CPythons (3.13-3.15 and the Py_DEBUG builds of 3.14 and 3.15) need sid's glibc:
# inside the sid root CI keeps for the .NET suite (scripts/sid-root.sh), with this repository at
# the same path, so the same hashmod.so is imported there.
if sid_root=$(bash scripts/sid-root.sh path 2>/dev/null); then
  repo=$(pwd -P)
  for name in 3.13 3.14 3.15 3.14d 3.15d; do
    label="$(chroot "$sid_root" /usr/bin/python$name -c 'import sys; print(sys.version.split()[0] + (" debug (Py_DEBUG)" if hasattr(sys, "gettotalrefcount") else ""))' 2>/dev/null || echo missing) /usr/bin/python$name (Debian sid root)"
    log="$log_dir/sid-$name.log"
    bash scripts/sid-root.sh run env PYTHONPATH="$repo/$publish_dir" timeout 600 /usr/bin/python$name \
      -m unittest discover -s "$repo/samples/HashModule/tests" -v > "$log" 2>&1
    tally "$log" "$label"
  done
else
  echo "[Debian sid CPython 3.13-3.15] skipped: no sid root (bash scripts/sid-root.sh create)"
fi

# The wheel: pip installs it into a fresh venv, whose python imports and awaits the module.
wheel_check() {
  local py=$1 label="wheel $2" venv="$log_dir/venv-$2" log="$log_dir/wheel-$2.log" wheel
  wheel=$("$py" src/Module/build/make_wheel.py "$publish_dir/hashmod.so" --out "$log_dir/dist" 2>>"$log") \
    && "$py" -m venv "$venv" >>"$log" 2>&1 \
    && "$venv/bin/python" -m pip install --no-index --disable-pip-version-check -q "$wheel" >>"$log" 2>&1 \
    && (cd / && "$venv/bin/python" -c "
import asyncio, hashmod
assert '/site-packages/hashmod.so' in hashmod.__file__, hashmod.__file__
async def main(): return await hashmod.sleep_ms(1), [i async for i in hashmod.ticks(2, 1, 'wheel')]
assert asyncio.run(main()) == (1, [0, 1])
assert hashmod.add1(1) == 2
") >>"$log" 2>&1
  if [ $? = 0 ]; then
    passed=$((passed + 1)); echo "[$label] 1 passed, 0 failed ($(basename "$wheel"))"
  else
    failed=$((failed + 1)); status=1; echo "[$label] 0 passed, 1 failed:"; tail -n 20 "$log"
  fi
}
wheel_check "$(command -v python3)" default
[ -x /usr/bin/python3.11 ] && wheel_check /usr/bin/python3.11 debian

echo "module tests: $passed passed, $failed failed"
exit $status
