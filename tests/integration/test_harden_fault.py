"""test_harden_fault.py — homemail-deliver under injected I/O faults and kill -9 (issue 8).

The shim build/libhm_fault.so (tests/fault/hm_fault.c) is LD_PRELOADed into
homemail-deliver --maildir.  A first clean run lists every watched call the
LDA makes (open/openat/write/fsync/rename/link/mkdir/close/unlink...); then
the same delivery is repeated once per call number with that call failing
with EIO, ENOSPC, EDQUOT and EINTR, with a short write, and with SIGKILL at
exactly that call.  After each run:
  * exit 0  -> the message is in new/ or cur/ exactly once, complete;
  * exit 75 -> nothing partial is visible in new/ or cur/;
  * killed  -> (reported failed to the caller) nothing partial is visible;
and a retry without faults delivers it.  A message is "complete" when its
body ends with the trailer line "X-END <sha256 of the body> <length>" and the
file name's ,S= equals the file size.

Then 1,000 deliveries each killed with SIGKILL at a random moment; the
tmp/ files they leave must be gone after the next delivery 37 hours later
(Maildir rule), while files with a fresh atime, mtime or ctime (a delivery
in progress), symlinks, directories and other users' files stay.  "Later" is
homemail-deliver's clock moved ahead with libfaketime (a declared test
dependency, tools/deps.d): a ctime cannot be set back.
"""
import hashlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

import pytest

import hmtest
from sievediff import FAKETIME_LIB

DELIVER = os.path.join(hmtest.BUILD, "homemail-deliver")
SHIM = os.path.join(hmtest.BUILD, "libhm_fault.so")
ERRNOS = ["EIO", "ENOSPC", "EDQUOT", "EINTR", "SHORT", "KILL"]
# issue 8's 1,000 deliveries (about 25 s here); HM_FAULT_KILL_RUNS sets another count
KILL_RUNS = int(os.environ.get("HM_FAULT_KILL_RUNS", "1000"))
SUMMARY = os.path.join(hmtest.BUILD_TREE, "harden-fault-summary.txt")

needs_deliver = pytest.mark.skipif(not os.path.exists(DELIVER),
                                   reason="build/homemail-deliver not built yet")


# ---------------------------------------------------------------------------
def _env(extra=None):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    if hmtest.SANITIZE:
        # the shim is preloaded ahead of the ASan runtime: allowed, it only
        # wraps libc calls and forwards them (see docs/hardening.md)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":verify_asan_link_order=0").lstrip(":")
    if extra:
        env.update(extra)
    return env


def make_message(tag, size=2048, rnd=None):
    """A self-checking message: the body ends with X-END <sha256> <len>."""
    rnd = rnd or random.Random(tag)
    lines = [f"ID {tag}\n".encode()]
    n = len(lines[0])
    while n < size:
        line = ("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 ")
                        for _ in range(rnd.randint(10, 76))) + "\n").encode()
        lines.append(line)
        n += len(line)
    body = b"".join(lines)
    trailer = f"X-END {hashlib.sha256(body).hexdigest()} {len(body)}\n".encode()
    hdr = (f"From: fault-test <sender@example.org>\nTo: rcpt@home.com.bo\n"
           f"Subject: fault {tag}\nMessage-ID: <{tag}@harden.test>\n"
           f"Date: Sat, 28 Nov 2026 02:00:00 +0000\n\n").encode()
    return hdr + body + trailer


def check_file(path):
    """(tag, complete) for one delivered file; tag None when unreadable."""
    data = open(path, "rb").read()
    m = re.search(rb",S=(\d+)", os.path.basename(path).encode())
    size_ok = m is not None and int(m.group(1)) == len(data)   # homemail-deliver always names ,S=
    sep = data.find(b"\n\n")
    if sep < 0:
        return None, False
    body = data[sep + 2:]
    mt = re.match(rb"ID (\S+)\n", body)
    tag = mt.group(1).decode() if mt else None
    end = body.rfind(b"X-END ")
    if end < 0 or not body.endswith(b"\n"):
        return tag, False
    try:
        _, h, ln = body[end:].decode().split()
    except ValueError:
        return tag, False
    payload = body[:end]
    ok = (len(payload) == int(ln) and hashlib.sha256(payload).hexdigest() == h and size_ok)
    return tag, ok


def scan_maildir(md):
    """{tag: [complete, ...]} over new/ and cur/ of INBOX and every folder."""
    found = {}
    bad = []
    for root in [md] + [os.path.join(md, d) for d in os.listdir(md) if d.startswith(".")]:
        for sub in ("new", "cur"):
            d = os.path.join(root, sub)
            if not os.path.isdir(d):
                continue
            for n in os.listdir(d):
                tag, ok = check_file(os.path.join(d, n))
                found.setdefault(tag, []).append(ok)
                if not ok:
                    bad.append(os.path.join(d, n))
    return found, bad


class Lda:
    """Runs homemail-deliver --maildir as a test user, optionally with faults."""

    def __init__(self, user):
        self.user = user
        self.md = user.maildir

    def run(self, msg, faults=None, timeout=60, popen=False, args=(), later_hours=None):
        """One delivery of msg; args are extra LDA arguments.  later_hours:
        homemail-deliver's clock that many hours ahead (libfaketime; the
        files keep their real times: NO_FAKE_STAT).  A file's ctime cannot
        be set back, so this is how a test sees a tmp/ file 37 hours later.
        libfaketime also fakes futimens(UTIME_NOW): the "last scanned" stamp
        such a run sets on tmp/ is in the faked time (see _age_stamp)."""
        env = _env()
        preload = []
        if faults is not None:
            preload.append(SHIM)
            env.update(faults)
        if later_hours is not None:
            assert os.path.exists(FAKETIME_LIB), \
                f"{FAKETIME_LIB} missing (package libfaketime: tools/install-deps check)"
            preload.append(FAKETIME_LIB)
            env.update(FAKETIME=f"+{later_hours}h", NO_FAKE_STAT="1")
        if preload:
            env["LD_PRELOAD"] = ":".join(preload)
        argv = [DELIVER, "--maildir", self.md, "--no-sieve", "-f", "sender@example.org", *args]
        kw = dict(env=env, user=self.user.uid, group=self.user.gid, extra_groups=[],
                  cwd=self.user.home)
        if popen:
            return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, **kw)
        return subprocess.run(argv, input=msg, capture_output=True, timeout=timeout, **kw)


@pytest.fixture
def lda():
    """An LDA runner for a fresh user whose Maildir lives on tmpfs when there
    is one: these tests are about the process dying or a call failing, not
    about power loss, and fsync on tmpfs costs nothing (the runs are fast)."""
    u = hmtest.make_user(prefix="hmf")
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else u.home
    d = tempfile.mkdtemp(prefix="hmfault-", dir=base)
    os.chown(d, u.uid, u.gid)
    os.chmod(d, 0o700)
    u.maildir = os.path.join(d, "Maildir")
    yield Lda(u)
    shutil.rmtree(d, ignore_errors=True)


def _summary(line):
    with open(SUMMARY, "a") as f:
        f.write(line + "\n")
    print(line)


def _split_known(problems):
    """Problems matching a line of tests/fault/OPEN are known open bugs in
    their owner's file: ({bug id: count}, [other problems])."""
    rules = []
    p = os.path.join(hmtest.TOP, "tests", "fault", "OPEN")
    if os.path.exists(p):
        for line in open(p):
            line = line.strip()
            if line and not line.startswith("#"):
                bug, rx = line.split(None, 1)
                rules.append((bug, re.compile(rx.split("  #", 1)[0].strip())))
    known, other = {}, []
    for pr in problems:
        for bug, rx in rules:
            if rx.search(pr):
                known[bug] = known.get(bug, 0) + 1
                break
        else:
            other.append(pr)
    return known, other


# ---------------------------------------------------------------------------
# The shim itself (no homemail code needed): it must really inject.
def _shim_run(argv, **faults):
    env = _env(dict(LD_PRELOAD=SHIM, **faults))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)


def test_shim_injects_errno_at_chosen_call(tmp_path):
    r = _shim_run(["mkdir", str(tmp_path / "a")], HM_FAULT_CALLS="mkdir", HM_FAULT_NTH="1",
                  HM_FAULT_ERRNO="ENOSPC")
    assert r.returncode != 0 and "No space left on device" in r.stderr
    assert not (tmp_path / "a").exists()
    r = _shim_run(["mkdir", str(tmp_path / "b")], HM_FAULT_CALLS="mkdir", HM_FAULT_NTH="2")
    assert r.returncode == 0 and (tmp_path / "b").is_dir()


def test_shim_path_pattern_log_and_kill(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(os.urandom(64 * 1024))
    log = tmp_path / "log"
    r = _shim_run(["dd", f"if={src}", f"of={tmp_path / 'dst'}", "bs=4k", "status=none"],
                  HM_FAULT_CALLS="write", HM_FAULT_PATH="*/dst", HM_FAULT_NTH="3",
                  HM_FAULT_ERRNO="EDQUOT", HM_FAULT_LOG=str(log))
    assert r.returncode != 0 and "quota" in r.stderr.lower()
    lines = log.read_text().splitlines()
    assert lines == [f"1 write {tmp_path}/dst", f"2 write {tmp_path}/dst",
                     f"3 write {tmp_path}/dst FAIL"]
    r = _shim_run(["dd", f"if={src}", f"of={tmp_path / 'k'}", "status=none"],
                  HM_FAULT_CALLS="write", HM_FAULT_NTH="1", HM_FAULT_ERRNO="KILL")
    assert r.returncode == -signal.SIGKILL


def test_shim_rejects_bad_settings(tmp_path):
    r = _shim_run(["mkdir", str(tmp_path / "c")], HM_FAULT_CALLS="nosuchcall", HM_FAULT_NTH="1")
    assert r.returncode == 0 and "hm_fault: bad HM_FAULT_CALLS" in r.stderr


# ---------------------------------------------------------------------------
@needs_deliver
def test_clean_delivery_is_complete(lda):
    msg = make_message("clean-1")
    r = lda.run(msg)
    assert r.returncode == 0, r.stderr
    found, bad = scan_maildir(lda.md)
    assert found == {"clean-1": [True]} and not bad


@needs_deliver
def test_every_injection_point(lda):
    """Each watched call of a delivery fails in turn, with each error kind."""
    # enumerate the calls of one delivery into a fresh Maildir (creation
    # included) and of one into an existing Maildir
    logs = []
    for phase in ("fresh", "existing"):
        log = os.path.join(os.path.dirname(lda.user.maildir), f"calls-{phase}.log")
        r = lda.run(make_message(f"enum-{phase}"), {"HM_FAULT_LOG": log})
        assert r.returncode == 0, r.stderr
        logs.append(open(log).read().splitlines())
    # injection runs use fresh Maildirs for the first list, the shared one after
    stats = {"runs": 0, "delivered": 0, "deferred": 0, "killed": 0,
             "visible_after_failure": 0, "duplicates_after_kill": 0}
    problems = []
    seq = 0
    for phase, calls in zip(("fresh", "existing"), logs):
        assert calls, f"no watched call logged ({phase})"
        for n in range(1, len(calls) + 1):
            call = calls[n - 1].split()[1]
            for err in ERRNOS:
                if err == "SHORT" and call not in ("write", "pwrite", "writev"):
                    continue
                seq += 1
                tag = f"f{seq}-{phase}-{n}-{call}-{err}"
                if phase == "fresh":
                    lda.md = os.path.join(os.path.dirname(lda.user.maildir), f"md-{seq}")
                else:
                    lda.md = lda.user.maildir
                msg = make_message(tag)
                r = lda.run(msg, {"HM_FAULT_NTH": str(n), "HM_FAULT_ERRNO": err})
                stats["runs"] += 1
                what = f"{tag}: rc={r.returncode} {r.stderr.decode(errors='replace')[-300:]!r}"
                found, bad = (scan_maildir(lda.md) if os.path.isdir(lda.md) else ({}, []))
                if bad:
                    problems.append(f"{what}: partial/corrupt files {bad}")
                copies = found.get(tag, [])
                if r.returncode == 0:
                    stats["delivered"] += 1
                    if copies != [True]:
                        problems.append(f"{what}: exit 0 but copies={copies}")
                elif r.returncode == -signal.SIGKILL and err == "KILL":
                    stats["killed"] += 1
                elif r.returncode == 75:
                    stats["deferred"] += 1
                else:
                    problems.append(f"{what}: exit code neither 0 nor 75")
                if r.returncode != 0 and copies:
                    stats["visible_after_failure"] += 1
                # the retry (as Exim would) must deliver it
                if r.returncode != 0:
                    r2 = lda.run(msg)
                    if r2.returncode != 0:
                        problems.append(f"{what}: retry failed rc={r2.returncode} "
                                        f"{r2.stderr.decode(errors='replace')[-300:]!r}")
                    found, bad = scan_maildir(lda.md)
                    copies = found.get(tag, [])
                    if bad:
                        problems.append(f"{what}: after retry, corrupt files {bad}")
                    if not copies or not all(copies):
                        problems.append(f"{what}: after retry copies={copies}")
                    if len(copies) > 1:
                        if err == "KILL":
                            # killed after the message became visible: Exim sees
                            # a crash and retries, so a second copy is inherent
                            stats["duplicates_after_kill"] += 1
                        else:
                            problems.append(f"{what}: exit {r.returncode} although the "
                                            f"message was already visible: the retry "
                                            f"duplicated it")
    _summary(f"fault injection: {len(logs[0])}+{len(logs[1])} injection points, "
             + ", ".join(f"{k}={v}" for k, v in stats.items())
             + f", problems={len(problems)}")
    known, problems = _split_known(problems)
    if known:
        _summary("fault injection: known open bugs (tests/fault/OPEN): "
                 + "; ".join(f"{k}: {n} run(s)" for k, n in sorted(known.items())))
    assert not problems, "\n".join(problems[:40])
    if known:
        pytest.xfail("only known open bugs remain: " + ", ".join(sorted(known)))


@needs_deliver
def test_kill9_during_deliveries(lda):
    """SIGKILL at random moments of KILL_RUNS deliveries: nothing corrupt or lost."""
    rnd = random.Random(8)
    # how long a delivery takes, to aim the kills inside one
    durs = []
    for i in range(10):
        msg = make_message(f"warm-{i}", 64 * 1024)    # built outside the timing:
        t = time.monotonic()                          # it takes longer than a delivery
        r = lda.run(msg)
        durs.append(time.monotonic() - t)
        assert r.returncode == 0, r.stderr
    med = statistics.median(durs)
    outcome = {}
    for i in range(KILL_RUNS):
        tag = f"k{i}"
        msg = make_message(tag, rnd.choice([512, 4096, 65536, 262144]), rnd)
        # the moment is drawn over the whole life of the process, counted
        # from its start (not from after the message was written: by then
        # most deliveries are over and the kills would miss)
        t0 = time.monotonic()
        at = t0 + rnd.uniform(0, 1.5 * med)
        p = lda.run(None, popen=True)
        try:
            p.stdin.write(msg)
            p.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep(max(0.0, at - time.monotonic()))
        try:
            p.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(60)
        p.stderr.close()
        outcome[tag] = p.returncode
    found, bad = scan_maildir(lda.md)
    assert not bad, f"corrupt or partial files after kill -9: {bad[:10]}"
    lost = [t for t, rc in outcome.items() if rc == 0 and found.get(t) != [True]]
    dup = [t for t, c in found.items() if c and len(c) > 1]
    killed = [t for t, rc in outcome.items() if rc != 0]
    killed_visible = [t for t in killed if t in found]
    assert not lost, f"exit 0 but not delivered exactly once: {lost[:10]}"
    # a kill test whose kills all land after the delivery proves nothing
    assert len(killed) >= KILL_RUNS // 10, \
        f"only {len(killed)} of {KILL_RUNS} deliveries were killed (aim the kills better)"
    assert not dup, f"duplicates: {dup[:10]}"
    assert all(rc in (0, 75, -signal.SIGKILL) for rc in outcome.values()), \
        sorted(set(outcome.values()))
    tmpdir = os.path.join(lda.md, "tmp")
    stale = os.listdir(tmpdir)
    # the Maildir rule: the next delivery 37 hours later removes what the
    # killed ones left (at most 100 files a delivery: a few may be needed).
    # tmp/'s "last scanned" stamp (its atime) is real time here (every run
    # so far had the real clock; a scan cut short puts the old stamp back),
    # so 37 hours ahead it is more than 8 hours old: each of these scans.
    cleaned_by = 0
    while os.listdir(tmpdir) and cleaned_by < 1 + len(stale) // 100:
        cleaned_by += 1
        r = lda.run(make_message(f"after-kills-{cleaned_by}"), later_hours=37)
        assert r.returncode == 0, r.stderr
    left = os.listdir(tmpdir)
    assert not left, f"{len(left)} of {len(stale)} stale tmp/ files left after " \
                     f"{cleaned_by} deliveries 37 hours later"
    found, bad = scan_maildir(lda.md)
    assert not bad
    _summary(f"kill -9: {KILL_RUNS} deliveries (median {med * 1000:.1f} ms), "
             f"{len(outcome) - len(killed)} completed, {len(killed)} killed "
             f"({len(killed_visible)} of them already visible, complete), 0 corrupt, "
             f"{len(stale)} stale tmp files left, "
             f"removed by {cleaned_by} delivery(ies) 37 hours later")


def _age_stamp(tmpdir, t):
    """Set tmp/'s atime (the "last scanned" stamp the LDA shares with Dovecot)."""
    os.utime(tmpdir, (t, os.stat(tmpdir).st_mtime))


needs_faketime = pytest.mark.skipif(not os.path.exists(FAKETIME_LIB),
                                    reason=f"{FAKETIME_LIB} missing (package libfaketime)")


@needs_deliver
@needs_faketime
def test_stale_tmp_cleaned(lda):
    """Maildir rule (maildir(5); Dovecot does the same): tmp/ files untouched
    for 36 hours are removed by the next delivery; a file with any of atime,
    mtime, ctime fresh (a delivery in progress) stays, and so do symlinks,
    directories and other users' files."""
    r = lda.run(make_message("first"))
    assert r.returncode == 0, r.stderr
    tmpdir = os.path.join(lda.md, "tmp")
    real = time.time()
    old = real - 3600                 # atime/mtime: 37 h + 1 h before "37 h later"
    later = real + 37 * 3600
    stale = []
    for i in range(3):
        p = os.path.join(tmpdir, f"{int(old)}.M{i}P99999Q1.killed-delivery")
        with open(p, "wb") as f:
            f.write(b"From: partial")
        os.chown(p, lda.user.uid, lda.user.gid)
        os.utime(p, (old, old))
        stale.append(os.path.basename(p))
    keep = []
    for name, at, mt in (("in-progress.mtime", old, later - 60),    # being written
                         ("in-progress.atime", later - 60, old)):   # being read
        p = os.path.join(tmpdir, name)
        with open(p, "wb") as f:
            f.write(b"in progress")
        os.chown(p, lda.user.uid, lda.user.gid)
        os.utime(p, (at, mt))
        keep.append(name)
    victim = os.path.join(os.path.dirname(lda.md), "victim")
    with open(victim, "wb") as f:
        f.write(b"not mail")
    os.utime(victim, (old, old))
    os.symlink(victim, os.path.join(tmpdir, "link"))
    os.utime(os.path.join(tmpdir, "link"), (old, old), follow_symlinks=False)
    os.mkdir(os.path.join(tmpdir, "olddir"))
    os.utime(os.path.join(tmpdir, "olddir"), (old, old))
    rootfile = os.path.join(tmpdir, "root-owned")
    with open(rootfile, "wb") as f:
        f.write(b"x")
    os.utime(rootfile, (old, old))
    keep += ["link", "olddir", "root-owned"]

    # now: tmp/ was listed moments ago and the files' ctime is fresh
    r = lda.run(make_message("second"))
    assert r.returncode == 0, r.stderr
    assert set(stale + keep) <= set(os.listdir(tmpdir)), "removed files that are not stale"
    # 35 hours later (tmp/'s real-time stamp is then over 8 hours old: it is
    # scanned): atime/mtime are old, ctime is not: everything stays
    r = lda.run(make_message("third"), later_hours=35)
    assert r.returncode == 0, r.stderr
    assert set(stale + keep) <= set(os.listdir(tmpdir)), \
        "removed a file whose ctime is 35 hours old"
    # 37 hours later: the stale ones go.  The 35-hours run stamped tmp/ as
    # scanned at its faked clock (real + 35 h, within 8 hours of real + 37 h,
    # so this run would not scan): set the stamp back to long before
    _age_stamp(tmpdir, real - 9 * 3600)
    r = lda.run(make_message("fourth"), later_hours=37)
    assert r.returncode == 0, r.stderr
    left = sorted(os.listdir(tmpdir))
    found, bad = scan_maildir(lda.md)
    assert not bad and all(found.get(t) == [True] for t in ("second", "third", "fourth"))
    assert sorted(keep) == left, f"tmp/ after the cleaning delivery: {left}"
    assert open(victim, "rb").read() == b"not mail"


@needs_deliver
@needs_faketime
def test_stale_tmp_cleaned_in_folders(lda):
    """A Maildir++ folder's tmp/ (used by stores that cannot hard-link) is
    cleaned when a delivery opens that folder."""
    argv_folder = ["-m", "Archive"]
    r = lda.run(make_message("in-archive"), args=argv_folder)
    assert r.returncode == 0, r.stderr
    ftmp = os.path.join(lda.md, ".Archive", "tmp")
    real = time.time()
    old = real - 3600
    p = os.path.join(ftmp, f"{int(old)}.M1P99999Q1.killed-copy")
    with open(p, "wb") as f:
        f.write(b"partial copy")
    os.chown(p, lda.user.uid, lda.user.gid)
    os.utime(p, (old, old))
    r = lda.run(make_message("in-archive-2"), args=argv_folder, later_hours=37)
    assert r.returncode == 0, r.stderr
    assert os.listdir(ftmp) == []
    found, bad = scan_maildir(lda.md)
    assert not bad and found.get("in-archive-2") == [True]
