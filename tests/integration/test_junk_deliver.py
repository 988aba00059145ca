"""test_junk_deliver.py — the whole loop: private exim -> homemail-deliver ->
Maildir <- private dovecot with lib90_homemail_junk_plugin.so <- imaplib/doveadm.

A user moves a message to Junk (IMAP MOVE, COPY + STORE \\Deleted + EXPUNGE,
or doveadm move); the next message from that sender must land in Junk.
Moving one back to INBOX must make the next land in INBOX again.
Guards against: the plugin and homemail-deliver disagreeing on the file
(location, address form), envelope-only senders being missed, a trusted
sender still being filed by homemail's own rules (scan tag), and a damaged
or hostile list file costing mail.
"""
import os
import re
import shutil
import tempfile

import pytest

import hmtest
from test_junk_plugin import doveadm, junk_dovecot, kinds, msg, uids

DELIVER = os.path.join(hmtest.BUILD, "homemail-deliver")


def hermetic_deliver():
    """homemail-deliver with an empty private config and no global Sieve
    scripts, so a host provisioned with the homemail package (its
    /etc/homemail/deliver.conf, sieve before.d/after.d) cannot change what
    these tests see.  Returns (transport_command, transport_extra)."""
    hmtest._mkdir(hmtest.BASE, 0o755)
    w = tempfile.mkdtemp(prefix="junkdeliver-", dir=hmtest.BASE)
    os.chmod(w, 0o755)
    conf = os.path.join(w, "deliver.conf")
    with open(conf, "w") as f:
        f.write("# empty: homemail-deliver's defaults\n")
    os.chmod(conf, 0o644)
    hmtest._cleanups.append(lambda: shutil.rmtree(w, ignore_errors=True))
    return (f"{DELIVER} --config {conf}",
            f"  environment = HOMEMAIL_SIEVE_GLOBAL_BASE={w}/no-global-sieve")


@pytest.fixture
def loop(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    cmd, extra = hermetic_deliver()
    e = hmtest.Exim(None, transport_command=cmd, transport_extra=extra)
    e.start()
    c = d.imap(user)
    c.create("Junk")
    yield user, d, e, c
    try:
        c.logout()
    except Exception:
        pass
    e.stop()


def deliver(e, user, envelope, raw):
    """Send one message through exim and wait until it left the queue."""
    assert hmtest.send(e.smtp_port, envelope, [user.address], raw) == {}
    e.wait_queue_empty(60)


def count(user, folder=""):
    return len(hmtest.maildir_files(user.maildir, folder))


def where(user, subject):
    """The folder ('' = INBOX) holding the message with this subject."""
    hits = []
    for folder in ("", "Junk"):
        for p in hmtest.maildir_files(user.maildir, folder):
            data = open(p, "rb").read()
            if re.search(rb"^Subject: " + re.escape(subject.encode()) + rb"\r?$", data, re.M):
                hits.append(folder)
    assert len(hits) == 1, (subject, hits)
    return hits[0]


def teach(method, d, user, c, subject, to_box):
    """Move the message with this subject to to_box by the given method."""
    from_box = "INBOX" if to_box == "Junk" else "Junk"
    if method == "doveadm":
        r = doveadm(d, "move", "-u", user.name, to_box, "mailbox", from_box,
                      "header", "Subject", subject)
        assert r.returncode == 0, r.stderr
        return
    c.select(from_box)
    typ, data = c.uid("SEARCH", "HEADER", "Subject", subject)
    assert typ == "OK"
    u = data[0].decode().split()
    assert len(u) == 1, (subject, u)
    if method == "move":
        assert c.uid("MOVE", u[0], to_box)[0] == "OK"
    else:
        assert c.uid("COPY", u[0], to_box)[0] == "OK"
        assert c.uid("STORE", u[0], "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
        assert c.expunge()[0] == "OK"


@pytest.mark.parametrize("method", ["move", "copy-expunge", "doveadm"])
def test_next_message_follows_what_the_user_taught(loop, method):
    user, d, e, c = loop
    sender = f"Bulk Sender <offers-{method}@spam.example>"
    env = f"bounces-{method}@mailer.example"
    deliver(e, user, env, msg(sender, subject=f"{method} 1"))
    assert where(user, f"{method} 1") == ""

    teach(method, d, user, c, f"{method} 1", "Junk")
    assert kinds(user).get(f"offers-{method}@spam.example") == "B"
    deliver(e, user, env, msg(sender, subject=f"{method} 2"))
    assert where(user, f"{method} 2") == "Junk", e.mainlog()[-2000:]
    # dovecot sees the delivered message in Junk
    assert len(uids(c, "Junk")) == 2

    teach(method, d, user, c, f"{method} 2", "INBOX")
    assert kinds(user).get(f"offers-{method}@spam.example") == "T"
    deliver(e, user, env, msg(sender, subject=f"{method} 3"))
    assert where(user, f"{method} 3") == ""
    assert e.paniclog() == ""


def test_envelope_sender_alone_is_enough(loop):
    # the plugin records Return-Path too: a spammer rotating From: but not
    # the envelope sender is still caught
    user, d, e, c = loop
    deliver(e, user, "rotating@bulk.example", msg("first-face@bulk.example", subject="env 1"))
    teach("move", d, user, c, "env 1", "Junk")
    assert kinds(user).get("rotating@bulk.example") == "B"
    deliver(e, user, "rotating@bulk.example", msg("second-face@bulk.example", subject="env 2"))
    assert where(user, "env 2") == "Junk"
    # a different envelope with an unknown From: is not touched
    deliver(e, user, "someone@else.example", msg("third-face@bulk.example", subject="env 3"))
    assert where(user, "env 3") == ""


def test_trusted_sender_beats_scan_tag(loop):
    user, d, e, c = loop
    tag = "X-Homemail-Scan: tag; parts=1; depth=0; rules=ambiguous-boundary\r\n"
    deliver(e, user, "news@shop.example", msg("news@shop.example", subject="tag 1", extra=tag))
    assert where(user, "tag 1") == "Junk"          # homemail's rule: tagged -> Junk
    teach("move", d, user, c, "tag 1", "INBOX")     # the user disagrees
    assert kinds(user).get("news@shop.example") == "T"
    deliver(e, user, "news@shop.example", msg("news@shop.example", subject="tag 2", extra=tag))
    assert where(user, "tag 2") == ""               # trusted: never Junk by our rules


def test_encoded_display_name_and_case(loop):
    user, d, e, c = loop
    deliver(e, user, "x@y.example",
            msg("=?UTF-8?B?U3DDpG0gS8O2bmln?= <King@Spam.Example>", subject="enc 1"))
    teach("move", d, user, c, "enc 1", "Junk")
    deliver(e, user, "other@y.example",
            msg('"King, The" <KING@spam.example>', subject="enc 2"))
    assert where(user, "enc 2") == "Junk"


@pytest.mark.parametrize("damage", ["garbage", "symlink", "unreadable", "huge"])
def test_damaged_list_never_costs_mail(loop, damage):
    user, d, e, c = loop
    p = os.path.join(user.maildir, "homemail-junklist")
    if damage == "garbage":
        with open(p, "wb") as f:
            f.write(b"B 1 ok@bad.example\n\x00\xff\xfe garbage \x01\nT x y\n" * 1000)
        os.chown(p, user.uid, user.gid)
    elif damage == "symlink":
        os.symlink("/etc/shadow", p)
    elif damage == "unreadable":
        with open(p, "w") as f:
            f.write("B 1 ok@bad.example\n")
        os.chmod(p, 0)                              # root-owned, mode 000
    else:
        with open(p, "w") as f:
            for i in range(200000):
                f.write(f"B {i} user{i}@huge.example\n")
        os.chown(p, user.uid, user.gid)
    deliver(e, user, "ok@bad.example", msg("ok@bad.example", subject="damaged"))
    folder = where(user, "damaged")
    if damage == "garbage":
        assert folder == "Junk"       # the good line still counts
    elif damage == "huge":
        assert folder == ""
        deliver(e, user, "x@y.example", msg("user7@huge.example", subject="huge hit"))
        assert where(user, "huge hit") == "Junk"
    else:
        assert folder == ""           # unusable list: as if empty, mail delivered
    assert e.queue_count() == 0


def test_hostile_from_still_delivered(loop):
    # blocked envelope sender; the From: fields are garbage, huge, or absent:
    # each message is delivered (to Junk, by the envelope), none is lost
    user, d, e, c = loop
    deliver(e, user, "hostile@spam.example", msg("hostile@spam.example", subject="h0"))
    teach("move", d, user, c, "h0", "Junk")
    froms = ["<<<>>>,,;;", "=?UTF-8?B?!!!?= <", "x" * 20000, ""]
    for i, f in enumerate(froms):
        raw = msg("placeholder@x.example", subject=f"h{i + 1}")
        raw = raw.replace(b"From: placeholder@x.example\r\n",
                          (b"From: " + f.encode() + b"\r\n") if f else b"")
        deliver(e, user, "hostile@spam.example", raw)
        assert where(user, f"h{i + 1}") == "Junk"
    assert e.paniclog() == ""


def user_script(user, text):
    """Install text as the user's active Sieve script (~/.dovecot.sieve)."""
    p = os.path.join(user.home, ".dovecot.sieve")
    with open(p, "w") as f:
        f.write(text)
    os.chown(p, user.uid, user.gid)


def where_any(user, subject):
    """The Maildir++ folder ('' = INBOX) holding the message with this subject."""
    hits = []
    for entry in [""] + [n[1:] for n in os.listdir(user.maildir) if n.startswith(".")
                         and os.path.isdir(os.path.join(user.maildir, n))]:
        for p in hmtest.maildir_files(user.maildir, entry):
            if re.search(rb"^Subject: " + re.escape(subject.encode()) + rb"\r?$",
                         open(p, "rb").read(), re.M):
                hits.append(entry)
    assert len(hits) == 1, (subject, hits)
    return hits[0]


def test_sieve_sees_the_verdict_and_has_the_last_word(loop):
    user, d, e, c = loop
    deliver(e, user, "king@spam.example", msg("Spam King <king@spam.example>", subject="s0"))
    teach("move", d, user, c, "s0", "Junk")
    # a script that does not look at the verdict: the implicit keep is Junk
    user_script(user, 'require "fileinto";\n'
                      'if header :contains "subject" "nomatch" { fileinto "Other"; }\n')
    deliver(e, user, "king@spam.example", msg("Spam King <king@spam.example>", subject="s1"))
    assert where_any(user, "s1") == "Junk"
    # the script sees the verdict and the matched entry, and overrides
    user_script(user, 'require "fileinto";\n'
                      'if allof (header :is "X-Homemail-Junk" "blocked",\n'
                      '          header :is "X-Homemail-Junk-Sender" "king@spam.example")\n'
                      '  { fileinto "Reviewed"; stop; }\n')
    deliver(e, user, "king@spam.example", msg("Spam King <king@spam.example>", subject="s2"))
    assert where_any(user, "s2") == "Reviewed"
    # the view is only for Sieve: the stored message has no such field
    stored = open(hmtest.maildir_files(user.maildir, "Reviewed")[0], "rb").read()
    assert b"X-Homemail-Junk" not in stored


def test_sieve_verdict_cannot_be_forged(loop):
    user, d, e, c = loop
    user_script(user, 'require "fileinto";\n'
                      'if header :is "X-Homemail-Junk" "blocked" { fileinto "Caught"; stop; }\n'
                      'if header :is "X-Homemail-Junk" "none" { fileinto "Plain"; stop; }\n')
    forged = "X-Homemail-Junk: blocked\r\nX-Homemail-Junk-Sender: someone@else.example\r\n"
    deliver(e, user, "new@sender.example", msg("new@sender.example", subject="f1", extra=forged))
    assert where_any(user, "f1") == "Plain"
    # the stored copy is untouched: the sender's fields are still in it
    stored = open(hmtest.maildir_files(user.maildir, "Plain")[0], "rb").read()
    assert b"X-Homemail-Junk: blocked" in stored
