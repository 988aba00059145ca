"""test_deliver_e2e.py — homemail-deliver through the real servers.

A private exim4 runs homemail-deliver as its `homemail` pipe transport (as the
recipient, with no -d: the course notes' way); a private dovecot reads the
result back over IMAP/POP3 and reports folders, flags, keywords and quota.
Guards: bytes changed on the way, a second Return-Path, lost mail on an
unknown user or a down userdb, quota numbers that disagree with Dovecot's,
folder names Dovecot cannot see, and divergence from dovecot-lda's storage.
"""
import os
import re
import subprocess
import time

import pytest

import hmtest

LDA = os.path.join(hmtest.BUILD, "homemail-deliver")


def write_conf(text):
    """A deliver.conf readable by the test users; returns its path."""
    d = hmtest._workdir("deliverconf")
    p = os.path.join(d, "deliver.conf")
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o644)
    return p


def run_lda(user, args, data, env=None):
    """homemail-deliver as user (no PAM); returns CompletedProcess (bytes)."""
    e = {"PATH": "/usr/bin:/bin"}
    e.update(env or {})
    return hmtest.as_user(user, ["env", "-i"] + [f"{k}={v}" for k, v in e.items()] + [LDA] + args,
                          input=data, capture_output=True, timeout=60)


def files(user, folder=""):
    return hmtest.maildir_files(user.maildir, folder)


def test_roundtrip_bytes_imap_pop3(user, dovecot_for):
    d = dovecot_for([user])
    conf = write_conf("")
    body = ("line one\n\tindented line\n" + "x" * 990 + "\n.\n..leading dots\n"
            "8-bit: caf\u00e9 \u65e5\u672c\nend without trailing spaces\n")
    msg = hmtest.make_message(subject="round trip", to=user.address, body=body)
    with hmtest.Exim(None, transport_command=f"{LDA} --config {conf} --no-sieve") as e:
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], msg) == {}
        e.wait_queue_empty(30)
        log = e.mainlog()
    got = files(user)
    assert len(got) == 1, log
    raw = open(got[0], "rb").read()
    # exactly one Return-Path (Exim's return_path_add), our Delivered-To
    assert len(re.findall(rb"(?mi)^Return-Path:", raw)) == 1, raw[:400]
    assert raw.lower().startswith(b"return-path: <alice@example.org>\n")
    assert re.search(rb"(?m)^Delivered-To: " + user.address.encode() + rb"$", raw)
    assert b"\r" not in raw                       # stored with LF, as dovecot-lda does
    # the name carries the real sizes
    m = re.search(r",S=(\d+),W=(\d+)", got[0])
    assert int(m.group(1)) == len(raw)
    assert int(m.group(2)) == len(raw) + raw.count(b"\n")
    want_body = body.encode().replace(b"\n", b"\r\n")
    c = d.imap(user)
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[TEXT] RFC822.SIZE)")
    assert typ == "OK"
    assert data[0][1] == want_body
    assert f"RFC822.SIZE {int(m.group(2))}" in data[0][0].decode()
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1].startswith(b"Subject: round trip")
    c.logout()
    p = d.pop3(user)
    resp, lines, octets = p.retr(1)
    p.quit()
    text = b"\r\n".join(lines) + b"\r\n"
    assert text.endswith(want_body)


def test_unknown_user_bounces(user, dovecot_for):
    """The userdb does not know the recipient: exit 67, Exim bounces, nothing stored."""
    other = hmtest.make_user()
    pf = os.path.join(hmtest._workdir("userdb"), "users")
    with open(pf, "w") as f:
        f.write(f"{other.name}::{other.uid}:{other.gid}::{other.home}::\n")
    os.chmod(pf, 0o644)
    d = dovecot_for([user, other], userdb_conf=f"userdb {{\n  driver = passwd-file\n  args = {pf}\n}}")
    conf = write_conf(f"lookup_own_user = yes\nauth_socket = {d.auth_userdb_socket}\n")
    with hmtest.Exim(None, transport_command=f"{LDA} --config {conf} --no-sieve") as e:
        msg = hmtest.make_message(subject="to nobody", to=user.address)
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], msg) == {}
        hmtest.wait_for(lambda: "Completed" in e.mainlog(), 30, what="delivery attempt")
        e.wait_queue_empty(30)
        log = e.mainlog()
        bounces = e.outbox_messages()
        # the known user still gets mail through the same path
        assert hmtest.send(e.smtp_port, "alice@example.org", [other.address],
                           hmtest.make_message(to=other.address)) == {}
        e.wait_queue_empty(30)
    assert files(user) == []
    assert re.search(r"\*\* " + re.escape(user.address), log), log
    assert "unknown user" in log
    assert any(b"alice@example.org" in b and user.address.encode() in b for b in bounces), bounces
    assert len(files(other)) == 1


def test_userdb_down_defers_then_delivers(user, dovecot_for):
    d = dovecot_for([user])
    conf = write_conf(f"lookup_own_user = yes\nauth_socket = {d.auth_userdb_socket}\nauth_timeout = 3\n")
    d.stop()
    with hmtest.Exim(None, transport_command=f"{LDA} --config {conf} --no-sieve") as e:
        msg = hmtest.make_message(subject="later", to=user.address)
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], msg) == {}
        hmtest.wait_for(lambda: " == " in e.mainlog(), 30, what="deferral")
        assert e.queue_count() == 1
        assert files(user) == []
        assert "userdb" in e.mainlog()
        d.start()
        e.queue_run()
        hmtest.wait_for(lambda: len(files(user)) == 1, 30, what="delivery after retry")
        assert e.queue_count() == 0
    c = d.imap(user)
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"later" in data[0][1]
    c.logout()


QUOTA_CONF = """\
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=64K
}
"""


def maildirsize_sums(user):
    lines = open(os.path.join(user.maildir, "maildirsize")).read().splitlines()
    b = c = 0
    for ln in lines[1:]:
        x, y = ln.split()
        b += int(x)
        c += int(y)
    return lines[0], b, c


def dovecot_quota(d, user):
    r = d.doveadm("-f", "flow", "quota", "get", "-u", user.name)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in re.findall(r"(\w+=\S*)", line))
        out[f["Type"]] = int(f["Value"])
    return out


def test_quota_matches_dovecot_and_is_enforced(user, dovecot_for):
    d = dovecot_for([user], extra_conf=QUOTA_CONF)
    conf = write_conf("quota_rule = *:storage=64K\n")
    msg = hmtest.make_message(subject="q", to=user.address, body="y" * 4000 + "\n")
    for i in range(5):
        r = run_lda(user, ["--config", conf, "--no-sieve"], msg)
        assert r.returncode == 0, r.stderr
    limits, b, c = maildirsize_sums(user)
    assert limits == "65536S"
    assert c == 5
    assert b == sum(os.path.getsize(p) for p in files(user))
    q = dovecot_quota(d, user)
    assert q["MESSAGE"] == c
    assert q["STORAGE"] == -(-b // 1024)
    # Dovecot's own recalculation agrees with what we appended
    r = d.doveadm("quota", "recalc", "-u", user.name)
    assert r.returncode == 0, r.stderr
    limits2, b2, c2 = maildirsize_sums(user)
    assert (limits2, b2, c2) == (limits, b, c)
    # over quota: 75 by default, 77 with quota_full = reject; nothing stored
    big = hmtest.make_message(subject="big", to=user.address, body="z" * 60000 + "\n")
    r = run_lda(user, ["--config", conf, "--no-sieve"], big)
    assert r.returncode == 75, r.stderr
    assert b"Quota exceeded" in r.stderr
    conf2 = write_conf("quota_rule = *:storage=64K\nquota_full = reject\n")
    r = run_lda(user, ["--config", conf2, "--no-sieve", "-e"], big)
    assert r.returncode == 77, r.stderr
    assert len(files(user)) == 5
    assert not os.listdir(os.path.join(user.maildir, "tmp"))
    # IMAP GETQUOTAROOT reports the same numbers to clients
    c_ = d.imap(user)
    typ, data = c_.getquotaroot("INBOX")
    c_.logout()
    assert f"STORAGE {-(-b // 1024)} 64".encode() in b" ".join(x for x in data[1] if isinstance(x, bytes)) or \
        f"STORAGE {-(-b // 1024)} 64" in str(data), data


def test_folders_flags_keywords_as_dovecot_reports(user, dovecot_for):
    d = dovecot_for([user])
    conf = write_conf("")
    cases = [("Lists.Debian", "\\Seen $Work"), ("Entw\u00fcrfe", "\\Flagged \\Answered Project"),
             ("R&D", ""), ("INBOX", "\\Draft \\Deleted")]
    for folder, flags in cases:
        args = ["--config", conf, "--no-sieve", "-m", folder]
        if flags:
            args += ["--flags", flags]
        r = run_lda(user, args, hmtest.make_message(subject=folder, to=user.address))
        assert r.returncode == 0, r.stderr
    # a name we refuse falls back to INBOX (as dovecot-lda does for bad -m)
    r = run_lda(user, ["--config", conf, "--no-sieve", "-m", "bad..name"],
                hmtest.make_message(subject="fallback", to=user.address))
    assert r.returncode == 0, r.stderr
    assert os.path.isdir(os.path.join(user.maildir, ".Entw&APw-rfe"))
    assert os.path.isfile(os.path.join(user.maildir, ".Lists.Debian", "maildirfolder"))
    assert oct(os.stat(os.path.join(user.maildir, ".R&-D")).st_mode & 0o777) == "0o700"
    c = d.imap(user)
    typ, data = c.list()
    names = b"\n".join(data).decode()
    for want in ('"Lists.Debian"', '"Entw&APw-rfe"', '"R&-D"'):
        assert want in names or want.strip('"') in names, names
    expect = {"Lists.Debian": {"\\Seen", "$Work"},
              "Entw&APw-rfe": {"\\Flagged", "\\Answered", "Project"},
              "R&-D": set(), "INBOX": {"\\Draft", "\\Deleted"}}
    for box, want in expect.items():
        typ, _ = c.select(f'"{box}"')
        assert typ == "OK", box
        typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", data[0][0]).group(1).decode().split())
        flags.discard("\\Recent")
        assert flags == want, (box, flags)
    typ, data = c.select("INBOX")
    assert int(data[0]) == 2          # INBOX case + the fallback
    c.logout()
    # doveadm sees the same keywords
    r = d.doveadm("fetch", "-u", user.name, "flags", "mailbox", "Lists.Debian", "all")
    assert "$Work" in r.stdout, r.stdout + r.stderr


def test_same_bytes_as_dovecot_lda(user, dovecot_for):
    """CRLF, a leading From line, NUL, bare CR, 8-bit header, no final newline:
    stored exactly as dovecot-lda stores them (plus our two trace fields)."""
    d = dovecot_for([user])
    conf = write_conf("")
    raw = (b"From alice@example.org Sat Nov 28 00:00:00 2026\r\nSubject: h\xe9\x00llo\r\n"
           b"X-Folded: a\r\n\tb\r\n\r\nbody\x00nul\r\nbare\rcr\r\n\r\nlast line")
    r = run_lda(user, ["--config", conf, "--no-sieve", "-f", "alice@example.org"], raw,
                env={"RECIPIENT": user.address})
    assert r.returncode == 0, r.stderr
    ours = open(files(user)[0], "rb").read()
    head = f"Return-Path: <alice@example.org>\nDelivered-To: {user.address}\n".encode()
    assert ours.startswith(head)
    lda_dir = os.path.join(user.home, "lda")
    r = hmtest.as_user(user, ["/usr/lib/dovecot/dovecot-lda", "-c", d.conf_path, "-o",
                              f"mail_location=maildir:{lda_dir}", "-f", "alice@example.org"],
                       input=raw, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    stock = open(hmtest.maildir_files(lda_dir)[0], "rb").read()
    assert ours[len(head):] == stock
    # and Dovecot serves our file whole
    c = d.imap(user)
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[TEXT])")
    c.logout()
    assert data[0][1] == b"body\x00nul\r\nbare\rcr\r\n\r\nlast line" or \
        data[0][1].replace(b"\x80", b"\x00") == b"body\x00nul\r\nbare\rcr\r\n\r\nlast line"
