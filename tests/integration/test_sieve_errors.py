"""Broken-script corpus (tests/sieve-errors/): `homemail-sieve check FILE`
must exit 1 and print `FILE:LINE:COL: error: MESSAGE` whose first error has
the expected position and one of the expected message fragments; and
Pigeonhole's sievec must refuse every file too (only the refusal is
compared, not its wording).  The position convention is written at the top
of tests/sieve-errors/EXPECTED and in docs/sieve-testing.md.

A positive control keeps `check` honest: every script of the differential
suite that is not marked `fails: both` must pass `homemail-sieve check`.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

import sievediff

ERR_DIR = os.path.join(sievediff.TOP, "tests", "sieve-errors")


def _load():
    out = []
    with open(os.path.join(ERR_DIR, "EXPECTED"), encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            name, pos, frag = line.split(None, 2)
            ln, col = pos.split(":")
            out.append((name, int(ln), int(col), [x.strip().lower() for x in frag.strip().split("|")]))
    return out


ENTRIES = _load()


def test_corpus_size():
    assert len(ENTRIES) >= 40, f"only {len(ENTRIES)} broken scripts"
    files = sorted(f for f in os.listdir(ERR_DIR) if f.endswith(".sieve"))
    assert files == sorted(e[0] for e in ENTRIES), "EXPECTED and the .sieve files disagree"


def _need_binary():
    assert os.access(sievediff.HM_SIEVE, os.X_OK), \
        f"{sievediff.HM_SIEVE} is not built yet (make build-all)"


@pytest.mark.parametrize("name,line,col,frags", ENTRIES, ids=[e[0] for e in ENTRIES])
def test_check_reports_position(name, line, col, frags):
    _need_binary()
    path = os.path.join(ERR_DIR, name)
    p = subprocess.run([sievediff.HM_SIEVE, "check", path], capture_output=True,
                       text=True, errors="replace", timeout=20)
    out = p.stderr + p.stdout
    assert p.returncode == 1, f"exit {p.returncode}, want 1\n{out}"
    errs = re.findall(r"^" + re.escape(path) + r":(\d+):(\d+): error: (.*)$", out, re.M)
    assert errs, f"no '{path}:LINE:COL: error: ...' line in:\n{out}"
    got_line, got_col, msg = int(errs[0][0]), int(errs[0][1]), errs[0][2]
    assert (got_line, got_col) == (line, col), \
        f"first error at {got_line}:{got_col}, want {line}:{col}\n{out}"
    assert any(f in msg.lower() for f in frags), \
        f"message {msg!r} contains none of {frags}"


@pytest.fixture(scope="module")
def sievec_dir():
    """The corpus copied where nobody can read it and write .svbin files."""
    d = tempfile.mkdtemp(prefix="hm-sieveerr-")
    os.chmod(d, 0o755)
    for name, *_ in ENTRIES:
        shutil.copy(os.path.join(ERR_DIR, name), d)
    conf = os.path.join(d, "pigeonhole.conf")
    with open(conf, "w") as f:
        f.write(sievediff.PIGEONHOLE_CONF.format(maildir=os.path.join(d, "nomail"),
                                                 ext=sievediff.EXTENSIONS))
    sievediff._chown_tree(d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("name", [e[0] for e in ENTRIES])
def test_sievec_refuses(name, sievec_dir):
    cmd = ["/usr/bin/sievec", "-c", os.path.join(sievec_dir, "pigeonhole.conf"),
           "-o", f"plugin/sieve=file:{sievec_dir}", os.path.join(sievec_dir, name),
           os.path.join(sievec_dir, name + ".svbin")]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=30)
    assert p.returncode != 0, f"sievec accepted {name}:\n{p.stdout}{p.stderr}"
    assert "error" in (p.stdout + p.stderr).lower()


def test_valid_scripts_pass_check():
    """Every script the differential suite expects to compile passes check."""
    _need_binary()
    ws = sievediff.Workspace()
    bad = []
    try:
        seen = set()
        for c in sievediff.load_cases():
            key = (c.id.rsplit("/", 1)[0])
            # check has no --global-dir: scripts with :global includes are
            # covered by the differential suite (test gets --global-dir).
            if c.fails or key in seen or ":global" in c.script:
                continue
            seen.add(key)
            d = ws.case_dir(c)
            p = subprocess.run([sievediff.HM_SIEVE, "check", os.path.join(d, "script.sieve")],
                               capture_output=True, text=True, errors="replace", timeout=20)
            if p.returncode != 0:
                bad.append(f"{key}: exit {p.returncode}: {(p.stderr + p.stdout).strip()[:300]}")
    finally:
        ws.close()
    assert not bad, f"{len(bad)} valid scripts refused by check:\n" + "\n".join(bad)
