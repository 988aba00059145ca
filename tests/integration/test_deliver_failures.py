"""test_deliver_failures.py — homemail-deliver's failure paths and limits, run
directly as the test user (or as root with -d) the way Exim's pipe runs it.

Guards: partial messages visible after an error, the spool left behind, a
symlink planted in the Maildir being followed, mail delivered as root, lost
mail on a full disk, forwarding loops, hostile envelope values, unbounded
memory on a 50 MB message, and name collisions among concurrent writers.
"""
import hashlib
import os
import re
import subprocess
import threading

import pytest

import hmtest
from test_deliver_e2e import write_conf

LDA = os.path.join(hmtest.BUILD, "homemail-deliver")


EMPTY_CONF = None


def conf_empty():
    global EMPTY_CONF
    if EMPTY_CONF is None or not os.path.exists(EMPTY_CONF):
        EMPTY_CONF = write_conf("")
    return EMPTY_CONF


def run_lda(user, args, data, env=None, timeout=120):
    e = {"PATH": "/usr/bin:/bin"}
    e.update(env or {})
    argv = ["env", "-i"] + [f"{k}={v}" for k, v in e.items()] + [LDA, "--config", conf_empty()] + args
    if user is None:
        return subprocess.run(argv, input=data, capture_output=True, timeout=timeout)
    return hmtest.as_user(user, argv, input=data, capture_output=True, timeout=timeout)


def visible(maildir):
    return hmtest.maildir_files(maildir)


def tmp_files(maildir):
    p = os.path.join(maildir, "tmp")
    return os.listdir(p) if os.path.isdir(p) else []


MSG = hmtest.make_message(subject="failure paths", body="hello\n")


def test_unwritable_maildir_defers(user):
    os.makedirs(os.path.join(user.maildir, "new"))
    for sub in ("cur", "tmp"):
        os.makedirs(os.path.join(user.maildir, sub))
    os.chown(user.maildir, 0, 0)          # root-owned: the user cannot write in tmp/
    for sub in ("new", "cur", "tmp"):
        os.chown(os.path.join(user.maildir, sub), 0, 0)
    r = run_lda(user, ["--no-sieve"], MSG)
    assert r.returncode == 75, r.stderr
    assert b"homemail-deliver:" in r.stderr and b"Permission denied" in r.stderr
    assert visible(user.maildir) == [] and tmp_files(user.maildir) == []


def test_full_filesystem_defers_and_leaves_nothing(user):
    mnt = os.path.join(user.home, "small")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=256k,mode=0700,uid={user.uid},gid={user.gid}",
                    "hmtest-full", mnt], check=True)
    try:
        md = os.path.join(mnt, "Maildir")
        big = hmtest.make_message(subject="too big", body=("z" * 1000 + "\n") * 600)
        r = run_lda(user, ["--no-sieve", "--maildir", md], big)
        assert r.returncode == 75, r.stderr
        assert b"No space left" in r.stderr
        assert visible(md) == [] and tmp_files(md) == []
        # the file system still works for a message that fits
        r = run_lda(user, ["--no-sieve", "--maildir", md], MSG)
        assert r.returncode == 0, r.stderr
        assert len(visible(md)) == 1
    finally:
        subprocess.run(["umount", "-l", mnt], check=True)


def test_symlink_planted_in_maildir_not_followed(user):
    target = os.path.join(user.home, "elsewhere")
    os.makedirs(target)
    os.chown(target, user.uid, user.gid)
    for sub in ("cur", "tmp"):
        os.makedirs(os.path.join(user.maildir, sub))
    os.symlink(target, os.path.join(user.maildir, "new"))
    os.makedirs(os.path.join(user.maildir, ".Evil-target"))
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", user.maildir], check=True)
    r = run_lda(user, ["--no-sieve"], MSG)
    assert r.returncode == 75, r.stderr
    assert os.listdir(target) == []
    assert tmp_files(user.maildir) == []
    # a folder that is a symlink is refused too; the message falls back to INBOX
    os.unlink(os.path.join(user.maildir, "new"))
    os.makedirs(os.path.join(user.maildir, "new"))
    os.chown(os.path.join(user.maildir, "new"), user.uid, user.gid)
    os.symlink(target, os.path.join(user.maildir, ".Evil"))
    r = run_lda(user, ["--no-sieve", "-m", "Evil"], MSG)
    assert r.returncode == 0, r.stderr
    assert os.listdir(target) == []
    assert len(visible(user.maildir)) == 1


def test_forwarding_loop_refused(user):
    dt = f"Delivered-To: {user.address}\r\n"
    looped = hmtest.make_message(subject="loop", extra_headers=dt * 3)
    r = run_lda(user, ["--no-sieve"], looped, env={"RECIPIENT": user.address})
    assert r.returncode == 77, r.stderr
    assert b"loop" in r.stderr
    twice = hmtest.make_message(subject="ok", extra_headers=dt * 2)
    r = run_lda(user, ["--no-sieve"], twice, env={"RECIPIENT": user.address})
    assert r.returncode == 0, r.stderr
    raw = open(visible(user.maildir)[0], "rb").read()
    assert raw.count(b"Delivered-To: " + user.address.encode()) == 3


def test_hostile_envelope_values(user):
    for env in ({"SENDER": "a@b\r\nX-Injected: 1"}, {"RECIPIENT": "x y@z"},
                {"LOCAL_PART": "a\nb", "DOMAIN": "home.com.bo"}):
        r = run_lda(user, ["--no-sieve"], MSG, env=env)
        assert r.returncode == 64, (env, r.stderr)
        assert b"invalid" in r.stderr
    r = run_lda(user, ["--no-sieve", "--bogus"], MSG)
    assert r.returncode == 64
    r = run_lda(user, ["--no-sieve", "--flags", "has(paren"], MSG)
    assert r.returncode == 64
    assert visible(user.maildir) == []
    # null sender is fine and becomes Return-Path: <>
    r = run_lda(user, ["--no-sieve"], MSG, env={"SENDER": ""})
    assert r.returncode == 0, r.stderr
    assert open(visible(user.maildir)[0], "rb").read().startswith(b"Return-Path: <>\n")


def test_root_rules(user, dovecot_for):
    d = dovecot_for([user])
    # root without -d: refuse, never write as root
    r = run_lda(None, ["--no-sieve"], MSG)
    assert r.returncode == 75 and b"root" in r.stderr
    conf = write_conf(f"auth_socket = {d.auth_master_socket}\n")
    base = ["env", "-i", "PATH=/usr/bin:/bin", LDA, "--config", conf, "--no-sieve"]
    r = subprocess.run(base + ["-d", user.name], input=MSG, capture_output=True)
    assert r.returncode == 0, r.stderr
    got = visible(user.maildir)
    assert len(got) == 1
    st = os.stat(got[0])
    assert (st.st_uid, st.st_gid) == (user.uid, user.gid)
    assert os.stat(user.maildir).st_uid == user.uid
    r = subprocess.run(base + ["-d", "nosuchuser-hmtest"], input=MSG, capture_output=True)
    assert r.returncode == 67, r.stderr
    # userdb unreachable
    conf_down = write_conf("auth_socket = /nonexistent/auth-master\n")
    r = subprocess.run(["env", "-i", LDA, "--config", conf_down, "--no-sieve", "-d", user.name],
                       input=MSG, capture_output=True)
    assert r.returncode == 75 and b"connect" in r.stderr
    # a user with uid 0 is refused even when the user database says so
    conf_pw = write_conf("userdb = passwd\n")
    r = subprocess.run(["env", "-i", LDA, "--config", conf_pw, "--no-sieve", "-d", "root"],
                       input=MSG, capture_output=True)
    assert r.returncode == 75 and b"uid 0" in r.stderr
    # not root and -d someone else: cannot switch
    other = hmtest.make_user()
    r = hmtest.as_user(user, ["env", "-i", LDA, "--config", conf_pw, "--no-sieve", "-d", other.name],
                       input=MSG, capture_output=True)
    assert r.returncode == 75 and b"not root" in r.stderr
    assert len(visible(user.maildir)) == 1


def test_50mb_message_bounded_memory(user):
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    body = line * (50 * 1024 * 1024 // len(line))
    msg = b"Subject: big\r\nFrom: a@b.c\r\n\r\n" + body
    argv = ["env", "-i", "/usr/bin/time", "-f", "maxrss=%M", LDA, "--config", conf_empty(),
            "--no-sieve", "-f", "a@b.c"]
    r = hmtest.as_user(user, argv, input=msg, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rss_kb = int(re.search(rb"maxrss=(\d+)", r.stderr).group(1))
    if not hmtest.SANITIZE:             # ASan's shadow memory says nothing about ours
        assert rss_kb <= 8 * 1024, rss_kb
    got = visible(user.maildir)
    stored = open(got[0], "rb").read()
    want = msg.replace(b"\r\n", b"\n")
    assert stored.endswith(want)
    assert hashlib.sha256(stored[-len(want):]).digest() == hashlib.sha256(want).digest()
    nl = stored.count(b"\n")
    assert f",S={len(stored)},W={len(stored) + nl}" in got[0]


def test_concurrent_writers_distinct_complete(user):
    """8 writers x 500 messages into one Maildir: 4000 distinct, complete files.

    The Maildir sits on a tmpfs: what is tested here is naming and completeness
    under concurrency; on this shared machine's disk 8000 fsyncs alone take
    minutes (fsync durability is covered by the other tests and the bench)."""
    writers, per = 8, 500
    if hmtest.SANITIZE:
        per = 100          # ASan start-up is ~10x slower; the shape of the test stays
    work = hmtest._workdir("concurrent")
    mnt = os.path.join(user.home, "fast")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=64m,mode=0700,uid={user.uid},gid={user.gid}",
                    "hmtest-conc", mnt], check=True)
    try:
        _concurrent(user, writers, per, work, os.path.join(mnt, "Maildir"))
    finally:
        subprocess.run(["umount", "-l", mnt], check=True)


def _concurrent(user, writers, per, work, maildir):
    # messages prepared up front, so each delivery costs one fork+exec
    src = os.path.join(os.path.dirname(maildir), "src")
    os.makedirs(src)
    for w in range(writers):
        d = os.path.join(src, f"w{w}")
        os.makedirs(d)
        for i in range(per):
            with open(os.path.join(d, f"{i:04d}"), "wb") as f:
                f.write(b"Subject: w%d m%d\nMessage-ID: <w%d.m%d@t>\n\nwriter %d message %d\n%s\n"
                        % (w, i, w, i, w, i, b"p" * 200))
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", src], check=True)
    script = os.path.join(work, "writer.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\nfor m in %s/w$1/*; do\n'
                '  %s --config %s --no-sieve --maildir %s < $m || exit 1\n'
                'done\n' % (src, LDA, conf_empty(), maildir))
    os.chmod(script, 0o755)
    results = [None] * writers

    def go(w):
        try:
            results[w] = hmtest.as_user(user, ["sh", script, str(w)], capture_output=True,
                                        timeout=900)
        except Exception as ex:          # a timeout must fail the test, not hang it
            results[w] = ex
    ts = [threading.Thread(target=go, args=(w,)) for w in range(writers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r in results:
        assert not isinstance(r, Exception), r
        assert r.returncode == 0, r.stderr
    got = visible(maildir)
    assert len(got) == writers * per
    assert len({os.path.basename(p).split(",")[0] for p in got}) == writers * per
    seen = set()
    for p in got:
        data = open(p, "rb").read()
        m = re.search(rb"writer (\d+) message (\d+)\n" + b"p" * 200 + b"\n$", data)
        assert m, p
        seen.add((int(m.group(1)), int(m.group(2))))
        assert f",S={len(data)}," in p
    assert len(seen) == writers * per
    assert tmp_files(maildir) == []


def test_huge_header_bounded_and_kept_whole(user):
    """A 3 MB header line plus 200000 short fields: nothing lost, memory bounded
    (the header beyond max_header_size streams on like the body)."""
    msg = b"Subject: " + b"a" * 3000000 + b"\n" + b"X: y\n" * 200000 + b"\nbody\n"
    argv = ["env", "-i", "/usr/bin/time", "-f", "maxrss=%M", LDA, "--config", conf_empty(),
            "--no-sieve", "-f", "a@b.c"]
    r = hmtest.as_user(user, argv, input=msg, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rss_kb = int(re.search(rb"maxrss=(\d+)", r.stderr).group(1))
    if not hmtest.SANITIZE:
        assert rss_kb <= 8 * 1024, rss_kb
    stored = open(visible(user.maildir)[0], "rb").read()
    assert stored.endswith(msg)
    assert stored.startswith(b"Return-Path: <a@b.c>\n")


SYSLOG_CATCHER = r'''
import os, socket, subprocess, sys, json
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "hmtest-dev", "/dev"], check=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
out = []
for argv, data in json.loads(sys.argv[1]):
    r = subprocess.run(argv, input=data.encode("latin-1"), capture_output=True)
    s.settimeout(3)
    lines = []
    try:
        while True:
            lines.append(s.recv(65536).decode("latin-1"))
            s.settimeout(0.3)
    except socket.timeout:
        pass
    out.append([r.returncode, r.stderr.decode("latin-1"), lines])
print(json.dumps(out))
'''


def test_syslog_line_per_delivery(user):
    """One mail-facility syslog line per message with message-id, user, folder,
    size and result; a short reason on stderr only when it fails."""
    import json
    ok = hmtest.make_message(subject="logged").decode("latin-1")
    mid = re.search(r"Message-ID: (<[^>]+>)", ok).group(1)
    loop = hmtest.make_message(subject="loop", extra_headers=f"Delivered-To: {user.address}\r\n" * 3)
    base = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups",
            "env", "-i", f"RECIPIENT={user.address}", "SENDER=alice@example.org",
            LDA, "--config", conf_empty(), "--no-sieve"]
    runs = [[base, ok], [base, loop.decode("latin-1")]]
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "/usr/bin/python3", "-c",
                        SYSLOG_CATCHER, json.dumps(runs)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (rc1, err1, log1), (rc2, err2, log2) = json.loads(r.stdout)
    assert rc1 == 0 and err1 == ""
    assert len(log1) == 1, log1
    assert log1[0].startswith("<22>")           # LOG_MAIL | LOG_INFO
    size = os.path.getsize(visible(user.maildir)[0])
    for part in (f"msgid={mid}", f"user={user.name}", "from=<alice@example.org>",
                 f"to=<{user.address}>", "folder=INBOX", f"size={size}", "result=stored"):
        assert part in log1[0], (part, log1[0])
    assert rc2 == 77 and "loop" in err2 and err2.count("\n") == 1
    assert len(log2) == 1 and "result=rejected" in log2[0] and log2[0].startswith("<21>"), log2
