#!/usr/bin/env python3
"""Packs a published C# extension module (<name>.so) into a wheel that pip installs.

    python3 src/Module/build/make_wheel.py path/to/hashmod.so --version 0.1.0 --out dist

A wheel is a zip with the module at its root and a <name>-<version>.dist-info folder holding
METADATA, WHEEL and RECORD (sha256 of every file); the standard library is enough to write one.

Tag: py3-none-linux_x86_64. The .so is a plain '<name>.so' that every CPython 3.9+ imports and it
resolves Python's C API at run time from the importing process, so it does not depend on one
Python version's ABI. It is not tagged abi3: the library calls functions outside the stable ABI
(PyObject_VectorcallDict, version-specific entry points chosen at run time), which abi3 would
promise not to. The platform tag is the plain linux_x86_64 (no manylinux audit has been done).
"""
import argparse
import base64
import hashlib
import os
import re
import sys
import zipfile


def record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest},{len(data)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("so", help="the published <name>.so")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--summary", default="A Python extension module written in C# (AsyncioRaw, NativeAOT)")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()

    name = os.path.basename(args.so)
    if not name.endswith(".so") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name[:-3]):
        sys.exit(f"{args.so}: expected <module name>.so")
    module = name[:-3]
    dist = re.sub(r"[-_.]+", "_", module)
    tag = "py3-none-linux_x86_64"
    info = f"{dist}-{args.version}.dist-info"
    files = {
        name: open(args.so, "rb").read(),
        f"{info}/METADATA": (
            "Metadata-Version: 2.1\n"
            f"Name: {module}\n"
            f"Version: {args.version}\n"
            f"Summary: {args.summary}\n"
            "Requires-Python: >=3.9\n").encode(),
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\n"
            "Generator: asyncioraw make_wheel.py\n"
            "Root-Is-Purelib: false\n"
            f"Tag: {tag}\n").encode(),
    }
    record = "".join(f"{path},{record_hash(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()

    os.makedirs(args.out, exist_ok=True)
    wheel = os.path.join(args.out, f"{dist}-{args.version}-{tag}.whl")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = (0o755 if path == name else 0o644) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    print(wheel)


if __name__ == "__main__":
    main()
