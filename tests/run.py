#!/usr/bin/python3
"""run.py — the single test driver behind `make check`.

Runs every C unit-test binary in build/tests/ (cmocka, TAP output) and the
pytest integration suite in tests/integration/, then prints one summary line
`N passed, N failed[, N skipped]`.  Exit status is non-zero when anything
failed or when no test ran at all.  Skipped tests are reported, never counted
as passed.

  --only PATTERN   run only unit binaries / integration files whose name
                   contains PATTERN (for working on one piece)

A test counts once: failed when its call, setup or teardown failed; an
unexpected pass of an xfail test (XPASS) is a failure unless its marker says
strict=False.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_unit(pattern):
    """Run each cmocka binary with TAP output; return (passed, failed, skipped).
    cmocka reports a skip() as "not ok N # SKIP": a skip, neither a pass nor
    a failure."""
    passed = failed = skipped = 0
    tdir = os.path.join(TOP, "build", "tests")
    if not os.path.isdir(tdir):
        return 0, 0, 0
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
    for name in sorted(os.listdir(tdir)):
        path = os.path.join(tdir, name)
        if not name.startswith("test_") or not os.access(path, os.X_OK):
            continue
        if not os.path.exists(os.path.join(TOP, "tests", "unit", name + ".c")):
            continue    # left over from a renamed or removed test
        if pattern and pattern not in name:
            continue
        try:
            p = subprocess.run([path], cwd=TOP, env=env, capture_output=True,
                               text=True, errors="replace", timeout=600)
            out, rc = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timeout after 600 s\n", -1
        ok = len(re.findall(r"^ok \d+", out, re.M))
        skip = len(re.findall(r"^not ok \d+ # SKIP", out, re.M))
        bad = len(re.findall(r"^not ok \d+", out, re.M)) - skip
        if rc != 0 and bad == 0:
            bad = 1          # crashed, or failed before any test reported
        passed += ok
        failed += bad
        skipped += skip
        status = "ok" if bad == 0 else "FAILED"
        skipped_txt = f", {skip} skipped" if skip else ""
        print(f"unit {name}: {ok} passed, {bad} failed{skipped_txt} [{status}]", flush=True)
        if bad:
            sys.stdout.write(out[-4000:])
    return passed, failed, skipped


def run_integration(pattern, extra):
    """Run pytest over tests/integration; return (passed, failed, skipped)."""
    idir = os.path.join(TOP, "tests", "integration")
    files = sorted(f for f in os.listdir(idir)
                   if f.startswith("test_") and f.endswith(".py")
                   and (not pattern or pattern in f))
    if not files:
        return 0, 0, 0
    with tempfile.TemporaryDirectory() as td:
        xml = os.path.join(td, "junit.xml")
        # xfail_strict: a test marked xfail that passes (XPASS) is a failure
        # unless its marker says strict=False.
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfEsX",
               "-o", "xfail_strict=true", "-q", f"--junitxml={xml}"] + extra + \
            [os.path.join(idir, f) for f in files]
        rc = subprocess.run(cmd, cwd=TOP).returncode
        if not os.path.exists(xml):
            return 0, 1, 0
        passed, bad, skip = count_junit(ET.parse(xml).getroot())
        if rc not in (0, 5) and bad == 0:
            bad = 1
        return passed, bad, skip


def count_junit(root):
    """(passed, failed, skipped) from a JUnit XML tree, one outcome per test.
    The suite totals cannot be used: pytest adds a test whose teardown
    failed to `tests` twice (once passed, once as an error).  Here a test
    with any failure or error element (call, setup or teardown) is failed,
    once; else one with a skipped element (skip, xfail) is skipped; else passed."""
    outcome = {}
    for tc in root.iter("testcase"):
        key = (tc.get("classname"), tc.get("name"))
        kids = {c.tag for c in tc}
        if kids & {"failure", "error"}:
            o = "failed"
        elif "skipped" in kids:
            o = "skipped"
        else:
            o = "passed"
        prev = outcome.get(key)
        if prev != "failed" and not (prev == "skipped" and o == "passed"):
            outcome[key] = o
    vals = list(outcome.values())
    return vals.count("passed"), vals.count("failed"), vals.count("skipped")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("pytest_args", nargs="*")
    a = ap.parse_args()
    up, uf, usk = run_unit(a.only)
    ip, if_, isk = run_integration(a.only, a.pytest_args)
    passed, failed, skipped = up + ip, uf + if_, usk + isk
    print(f"unit: {up} passed, {uf} failed, {usk} skipped; "
          f"integration: {ip} passed, {if_} failed, {isk} skipped")
    tail = f", {skipped} skipped" if skipped else ""
    print(f"{passed} passed, {failed} failed{tail}")
    if failed or passed == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
