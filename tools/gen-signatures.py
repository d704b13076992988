#!/usr/bin/env python3
"""Generates a large synthetic ClamAV signature database, so that imapav-icapd's engine load,
reload and memory can be measured on a machine without a real one (no internet, no
freshclam). The signatures are random: they load, compile and cost what real ones of the
same kinds cost, and they never match mail (see "Why nothing matches" below).

Files written into OUT_DIR (each one to a hidden temporary name, fsynced, then renamed, so a
server reading the directory never sees half a file):

  synthetic.hdb          MD5 hash signatures        md5:size:Name
  synthetic.hsb          SHA-256 hash signatures    sha256:size:Name:73
  synthetic.ndb          body signatures            Name:Target:Offset:Hex
  synthetic.ldb          logical signatures         Name;Engine:51-255,Target:T;Expr;Sub0;Sub1...
  synthetic-markers.ndb  one body signature per --extra-marker (only with that option)
  imapav-test.ndb        copy of tests/data/signatures/imapav-test.ndb (--with-test-signatures)

Every line of a file is a signature, but for one '#' comment line at the top (libclamav
skips those) naming the seed and the --version-tag. A kind with count 0 removes its file.
Other files in OUT_DIR are left alone.

Why nothing matches: hash signatures are random digests; body and logical patterns are
random bytes (high bytes included, so never mail text), with at least 8 fixed bytes on each
side of a wildcard, at least 16 in a body signature and at least 12 in each alternative of
a logical one. The chance that a 5 MB message matches any of them by accident is below
1e-15.

Examples:
  tools/gen-signatures.py /tmp/sigs                                   # defaults, ~2 s
  tools/gen-signatures.py /tmp/sigs --with-test-signatures            # + EICAR and the test markers
  tools/gen-signatures.py /tmp/new --seed 2 --version-tag v2 \\
      --extra-marker IMAPAV-NEW-MARKER Imapav.Test.New --verify      # a "newer" database
  clamscan -d /tmp/sigs /dev/null                                     # "Known viruses: N"

Reported names: libclamav appends ".UNOFFICIAL" to every name from an unsigned database.
"""

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_SIGNATURES = os.path.join(ROOT, "tests", "data", "signatures", "imapav-test.ndb")
PREFIX = "Imapav.Synthetic"

# Target types as in real databases (ClamAV signatures.md): 0 any file, 1 PE, 3 HTML,
# 4 mail, 6 ELF, 7 ASCII text (normalised). Mail is scanned with 0, 4 and 7 and what its
# attachments turn out to be; the rest only cost load time and memory, as in a real
# database, where most body signatures are for executables.
BODY_TARGETS = [(0, 35), (1, 35), (3, 8), (4, 7), (6, 5), (7, 10)]


def parse_args():
    p = argparse.ArgumentParser(
        description="Generate a large synthetic ClamAV signature database (see the top of this file).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", help="output directory (created if missing)")
    p.add_argument("--hdb", type=int, default=400_000, help="MD5 hash signatures (default 400000)")
    p.add_argument("--hsb", type=int, default=100_000, help="SHA-256 hash signatures (default 100000)")
    p.add_argument("--ndb", type=int, default=150_000, help="body signatures (default 150000)")
    p.add_argument("--ldb", type=int, default=5_000, help="logical signatures (default 5000)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every count by this (e.g. 0.1 for a quick run)")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same files")
    p.add_argument("--version-tag", default="",
                   help="written into each file's header comment: same signatures, different bytes")
    p.add_argument("--extra-marker", nargs=2, action="append", default=[], metavar=("STRING", "NAME"),
                   help="add a body signature NAME matching the ASCII STRING anywhere (repeatable)")
    p.add_argument("--with-test-signatures", action="store_true",
                   help="copy tests/data/signatures/imapav-test.ndb (EICAR, Imapav.Test.*) in too")
    p.add_argument("--verify", action="store_true",
                   help="load the result with clamscan: the signature count must match and every "
                        "extra marker must be detected")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    a = p.parse_args()
    for kind in ("hdb", "hsb", "ndb", "ldb"):
        n = int(getattr(a, kind) * a.scale)
        if n < 0:
            p.error(f"--{kind} must not be negative")
        setattr(a, kind, n)
    if not a.version_tag.isprintable():
        p.error("--version-tag must be printable text on one line")
    for string, name in a.extra_marker:
        if len(string) < 4 or not string.isascii() or not string.isprintable():
            p.error(f"--extra-marker: {string!r} must be at least 4 printable ASCII characters")
        if not name or any(c in name for c in ":;#\n\r\t "):
            p.error(f"--extra-marker: {name!r} is not a valid signature name")
    return a


def size_of(rng):
    """A file size as hash signatures carry them: mostly 10 KB-2 MB executables and documents."""
    return int(10 ** rng.uniform(3.5, 6.5))


def hdb_lines(rng, count):
    for i in range(count):
        yield f"{rng.randbytes(16).hex()}:{size_of(rng)}:{PREFIX}.Hash-{i:07d}\n"


def hsb_lines(rng, count):
    # SHA-256 needs functionality level 73 (libclamav 0.98+); 1.x loads them as they are too.
    for i in range(count):
        yield f"{rng.randbytes(32).hex()}:{size_of(rng)}:{PREFIX}.Sha256-{i:07d}:73\n"


def fixed(rng, lo, hi):
    return rng.randbytes(rng.randint(lo, hi)).hex()


def body_pattern(rng):
    """Random hex of 16-32 fixed bytes, a third of them with the wildcards of real signatures."""
    kind = rng.random()
    if kind < 0.60:  # plain bytes: libclamav's Boyer-Moore matcher
        return fixed(rng, 16, 32)
    if kind < 0.75:  # one unknown byte (Aho-Corasick from here on)
        return fixed(rng, 8, 16) + "??" + fixed(rng, 8, 16)
    if kind < 0.90:  # a bounded gap
        lo = rng.randint(0, 8)
        return fixed(rng, 8, 16) + f"{{{lo}-{lo + rng.randint(1, 32)}}}" + fixed(rng, 8, 16)
    if kind < 0.95:  # any gap
        return fixed(rng, 8, 16) + "*" + fixed(rng, 8, 16)
    # one of two bytes
    a, b = rng.randbytes(2).hex()[:2], rng.randbytes(2).hex()[2:]
    if a == b:
        b = f"{(int(a, 16) + 1) % 256:02x}"
    return fixed(rng, 8, 16) + f"({a}|{b})" + fixed(rng, 8, 16)


def ndb_lines(rng, count):
    targets = [t for t, weight in BODY_TARGETS for _ in range(weight)]
    for i in range(count):
        target = rng.choice(targets)
        # Real executable signatures are often anchored; "0" = at the start of the file.
        offset = "0" if target in (1, 6) and rng.random() < 0.2 else "*"
        yield f"{PREFIX}.Body-{i:07d}:{target}:{offset}:{body_pattern(rng)}\n"


def ldb_lines(rng, count):
    expressions = [(2, "0&1"), (3, "(0|1)&2"), (3, "0&1&2"), (4, "(0&1)|(2&3)"), (2, "0|1")]
    targets = [t for t, weight in BODY_TARGETS for _ in range(weight)]
    for i in range(count):
        subs, expr = rng.choice(expressions)
        subsigs = [fixed(rng, 12, 20) if rng.random() < 0.8 else fixed(rng, 8, 12) + "??" + fixed(rng, 8, 12)
                   for _ in range(subs)]
        yield (f"{PREFIX}.Logical-{i:06d};Engine:51-255,Target:{rng.choice(targets)};{expr};"
               + ";".join(subsigs) + "\n")


def marker_lines(markers):
    for string, name in markers:
        yield f"{name}:0:*:{string.encode('ascii').hex()}\n"


def replace_atomically(out_dir, name, fill):
    """Creates OUT_DIR/NAME through FILL(binary file) under a hidden temporary name that
    libclamav ignores, fsyncs it, then renames it over NAME: readers see the old file or the
    whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            result = fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(out_dir, name))
    except BaseException:
        os.unlink(tmp)
        raise
    return result


def write_signatures(out_dir, name, header, lines):
    """Writes HEADER and LINES as OUT_DIR/NAME; returns the number of lines (signatures)."""
    def fill(f):
        count = 0
        f.write(header.encode("ascii"))
        for line in lines:
            f.write(line.encode("ascii"))
            count += 1
        return count
    return replace_atomically(out_dir, name, fill)


def copy_signatures(out_dir, source):
    """Copies SOURCE into OUT_DIR; returns its number of signatures."""
    with open(source, "rb") as src:
        data = src.read()
    replace_atomically(out_dir, os.path.basename(source), lambda f: f.write(data))
    return sum(1 for line in data.decode("ascii").splitlines() if line.strip() and not line.startswith("#"))


def verify(out_dir, written, markers):
    """Loads OUT_DIR with clamscan: every signature written must load, a plain text must
    stay clean and every marker must be found. Returns the number libclamav loaded."""
    clamscan = shutil.which("clamscan")
    if not clamscan:
        sys.exit("gen-signatures: --verify needs clamscan (Debian package clamav)")
    # Files we did not write (another database beside ours) load too.
    others = [n for n in os.listdir(out_dir) if n not in written and not n.startswith(".")]
    expected = sum(written.values())
    with tempfile.TemporaryDirectory(prefix="gen-signatures-verify.") as probe_dir:
        clean = os.path.join(probe_dir, "clean.txt")
        with open(clean, "w", encoding="ascii") as f:
            f.write("Subject: hello\r\n\r\n" + "The quick brown fox jumps over the lazy dog.\r\n" * 2000)
        probes = []
        for i, (string, name) in enumerate(markers):
            path = os.path.join(probe_dir, f"marker-{i}.txt")
            with open(path, "w", encoding="ascii") as f:
                f.write(f"Subject: probe\r\n\r\nsome text {string} more text\r\n")
            probes.append((path, name))
        out = subprocess.run([clamscan, "-d", out_dir, clean] + [p for p, _ in probes],
                             capture_output=True, text=True).stdout
    known = None
    for line in out.splitlines():
        if line.startswith("Known viruses:"):
            known = int(line.split(":")[1])
    errors = []
    if known is None:
        errors.append("clamscan did not load the directory: " + out.strip()[-300:])
    elif known != expected and not (others and known > expected):
        errors.append(f"libclamav loaded {known} signatures, {expected} were written")
    if f"{clean}: OK" not in out:
        errors.append("a plain text file was detected")
    for path, name in probes:
        if f"{path}: {name}.UNOFFICIAL FOUND" not in out:
            errors.append(f"marker {name} not detected")
    if errors:
        sys.exit("gen-signatures: verify FAILED: " + "; ".join(errors))
    return known


def main():
    a = parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    header = (f"# imapav synthetic signatures (tools/gen-signatures.py), seed {a.seed}"
              + (f", version {a.version_tag}" if a.version_tag else "") + "\n")
    # One generator per kind, seeded from the seed and the kind: changing one count does
    # not change the other files.
    kinds = [("synthetic.hdb", a.hdb, hdb_lines), ("synthetic.hsb", a.hsb, hsb_lines),
             ("synthetic.ndb", a.ndb, ndb_lines), ("synthetic.ldb", a.ldb, ldb_lines)]
    written = {}
    for name, count, lines in kinds:
        path = os.path.join(a.out_dir, name)
        if count == 0:
            if os.path.exists(path):
                os.unlink(path)
            continue
        seed = int.from_bytes(hashlib.sha256(f"{a.seed}/{name}".encode()).digest()[:8], "big")
        written[name] = write_signatures(a.out_dir, name, header, lines(random.Random(seed), count))
    markers_path = os.path.join(a.out_dir, "synthetic-markers.ndb")
    if a.extra_marker:
        written["synthetic-markers.ndb"] = write_signatures(a.out_dir, "synthetic-markers.ndb", header,
                                                            marker_lines(a.extra_marker))
    elif os.path.exists(markers_path):
        os.unlink(markers_path)
    if a.with_test_signatures:
        written["imapav-test.ndb"] = copy_signatures(a.out_dir, TEST_SIGNATURES)
    total = sum(written.values())
    if not a.quiet:
        for name, count in written.items():
            print(f"{os.path.join(a.out_dir, name)}: {count} signature{'' if count == 1 else 's'}")
        print(f"total: {total} signatures")
    if a.verify:
        loaded = verify(a.out_dir, written, a.extra_marker)
        if not a.quiet:
            print(f"verified with clamscan: {loaded} signatures loaded"
                  + (f", {len(a.extra_marker)} marker(s) detected" if a.extra_marker else ""))


if __name__ == "__main__":
    main()
