"""test_junk_plugin.py — lib90_homemail_junk_plugin.so inside a private dovecot.

A real dovecot loads the plugin from a private mail_plugin_dir; a real IMAP
client (imaplib) and doveadm move mail; the tests read the user's
homemail-junklist file (format: lib/hm_junklist.h, docs/junk.md).
Guards against: teaching from the IMAP command instead of the storage
(COPY+EXPUNGE, doveadm would be missed), teaching before commit (a
rolled-back copy must leave no trace), lost updates when two sessions
move at once, crashes on hostile From: headers, unbounded lists, and a
learn_command that blocks the session.
"""
import os
import re
import shutil
import stat
import tempfile
import threading
import time

import pytest

import hmtest

PLUGIN = os.path.join(hmtest.BUILD, "lib90_homemail_junk_plugin.so")
# Built with SANITIZE=1 the plugin needs the ASan/UBSan runtimes, which a
# stock (uninstrumented) dovecot only has when they are preloaded into it
# and into the mail processes it starts (import_environment).
SAN_PRELOAD = "/usr/lib/x86_64-linux-gnu/libasan.so.8 /usr/lib/x86_64-linux-gnu/libubsan.so.1"
SAN_OPTIONS = "detect_leaks=0:fast_unwind_on_malloc=0:abort_on_error=1:log_path=/var/tmp/hmtest/junk-asan-logs/asan"
LINE = re.compile(r"^([BT]) (\d+) (\S+)$")


def plugin_dir(extra=()):
    """A private, world-readable copy of the plugin (and any stock ones)."""
    hmtest._mkdir(hmtest.BASE, 0o755)
    d = tempfile.mkdtemp(prefix="junkmods-", dir=hmtest.BASE)
    os.chmod(d, 0o755)
    shutil.copy2(PLUGIN, d)
    for name in extra:
        shutil.copy2(os.path.join("/usr/lib/dovecot/modules", name), d)
    hmtest._cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def junk_dovecot(dovecot_for, users, plugin_settings="", extra="", stock_plugins=(),
                 mail_plugins="homemail_junk"):
    if hmtest.SANITIZE:
        logs = os.path.join(hmtest.BASE, "junk-asan-logs")
        os.makedirs(logs, exist_ok=True)
        os.chmod(logs, 0o1777)          # the mail processes run as the test user
        extra += ("import_environment = TZ CORE_OUTOFMEM CORE_ERROR "
                  f"LD_PRELOAD={SAN_PRELOAD.replace(' ', ':')} ASAN_OPTIONS={SAN_OPTIONS}\n"
                  "default_vsz_limit = 0\n")   # ASan reserves terabytes of shadow
    conf = (f"mail_plugin_dir = {plugin_dir(stock_plugins)}\n"
            f"mail_plugins = $mail_plugins {mail_plugins}\n"
            "mail_debug = yes\nplugin {\n  homemail_junk_debug = yes\n" + plugin_settings + "}\n" + extra)
    return dovecot_for(users, extra_conf=conf)


def doveadm(d, *args):
    """d.doveadm, with the sanitizer runtimes preloaded under SANITIZE=1."""
    env = dict(os.environ)
    if hmtest.SANITIZE:
        env.update(LD_PRELOAD=SAN_PRELOAD, ASAN_OPTIONS=SAN_OPTIONS)
    return hmtest.subprocess.run(["doveadm", "-c", d.conf_path] + list(args),
                                 capture_output=True, text=True, env=env)


def read_list(user):
    """{address: (kind, stamp)} from the user's list; asserts every line is well formed."""
    p = os.path.join(user.maildir, "homemail-junklist")
    if not os.path.exists(p):
        return {}
    st = os.lstat(p)
    assert stat.S_ISREG(st.st_mode)
    assert st.st_uid == user.uid and stat.S_IMODE(st.st_mode) == 0o600
    out = {}
    for line in open(p, encoding="utf-8").read().split("\n"):
        if line == "" or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"malformed line {line!r}"
        assert m.group(3) not in out, f"duplicate {m.group(3)}"
        out[m.group(3)] = (m.group(1), int(m.group(2)))
    return out


def kinds(user):
    return {a: k for a, (k, _) in read_list(user).items()}


def msg(sender, subject="hello", return_path=None, extra=""):
    if return_path:
        extra = f"Return-Path: {return_path}\r\n" + extra
    return hmtest.make_message(subject=subject, sender=sender, extra_headers=extra)


def session(d, user, folders=("Junk",)):
    c = d.imap(user)
    for f in folders:
        c.create(f)
    return c


def append(c, box, raw):
    typ, data = c.append(box, None, None, raw)
    assert typ == "OK", data


def uids(c, box):
    typ, _ = c.select(box)
    assert typ == "OK"
    typ, data = c.uid("SEARCH", "ALL")
    assert typ == "OK"
    return data[0].decode().split()


def no_crash(d):
    log = d.log()
    assert "Panic" not in log and "Fatal" not in log and "segfault" not in log.lower(), log[-3000:]


def test_imap_move_blocks_from_and_return_path(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    c = session(d, user)
    append(c, "INBOX", msg("Spam King <King@Spam.Example>",
                           return_path="<bounce-77@mailer.spam.example>"))
    append(c, "INBOX", msg("friend@example.org"))
    assert kinds(user) == {}, "APPEND into INBOX must teach nothing"
    u = uids(c, "INBOX")
    typ, data = c.uid("MOVE", u[0], "Junk")
    assert typ == "OK", data
    assert kinds(user) == {"king@spam.example": "B", "bounce-77@mailer.spam.example": "B"}
    c.logout()
    no_crash(d)


def test_copy_store_expunge_blocks(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    c = session(d, user)
    append(c, "INBOX", msg("copier@spam.example"))
    u = uids(c, "INBOX")
    assert c.uid("COPY", u[0], "Junk")[0] == "OK"
    assert c.uid("STORE", u[0], "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    assert kinds(user) == {"copier@spam.example": "B"}
    c.logout()


def test_doveadm_move_and_back(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    c = session(d, user)
    append(c, "INBOX", msg("viadoveadm@spam.example"))
    c.logout()
    r = doveadm(d, "move", "-u", user.name, "Junk", "mailbox", "INBOX", "ALL")
    assert r.returncode == 0, r.stderr
    assert kinds(user) == {"viadoveadm@spam.example": "B"}
    r = doveadm(d, "move", "-u", user.name, "INBOX", "mailbox", "Junk", "ALL")
    assert r.returncode == 0, r.stderr
    assert kinds(user) == {"viadoveadm@spam.example": "T"}


def test_move_back_trusts_and_trash_does_not(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    c = session(d, user, ("Junk", "Trash", "Archive"))
    append(c, "INBOX", msg("misjudged@example.org"))
    append(c, "INBOX", msg("realspam@spam.example"))
    u = uids(c, "INBOX")
    assert c.uid("MOVE", ",".join(u), "Junk")[0] == "OK"
    assert kinds(user) == {"misjudged@example.org": "B", "realspam@spam.example": "B"}
    # Junk -> Trash: still junk, nothing changes
    ju = uids(c, "Junk")
    typ, data = c.uid("SEARCH", "FROM", "realspam")
    assert c.uid("MOVE", data[0].decode(), "Trash")[0] == "OK"
    # Junk -> Archive (not INBOX, not Trash): not junk
    typ, data = c.uid("SEARCH", "FROM", "misjudged")
    assert c.uid("MOVE", data[0].decode(), "Archive")[0] == "OK"
    assert kinds(user) == {"misjudged@example.org": "T", "realspam@spam.example": "B"}
    assert len(ju) == 2
    c.logout()


def test_append_into_junk_blocks(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    c = session(d, user)
    append(c, "Junk", msg('"=?UTF-8?B?U3DDpG0gS8O2bmln?=" <appended@spam.example>'))
    assert kinds(user) == {"appended@spam.example": "B"}
    c.logout()


def test_special_use_or_configured_name(user, dovecot_for):
    # "Spam" is not \Junk in the harness config; configured by name it counts,
    # and the harness's \Junk mailbox "Junk" still counts through special-use
    d = junk_dovecot(dovecot_for, [user], "  homemail_junk_mailbox = Spam\n")
    c = session(d, user, ("Junk", "Spam"))
    append(c, "INBOX", msg("one@spam.example"))
    append(c, "INBOX", msg("two@spam.example"))
    u = uids(c, "INBOX")
    assert c.uid("MOVE", u[0], "Spam")[0] == "OK"
    assert c.uid("MOVE", u[1], "Junk")[0] == "OK"
    assert kinds(user) == {"one@spam.example": "B", "two@spam.example": "B"}
    c.logout()


def test_rolled_back_copy_teaches_nothing(user, dovecot_for):
    # quota allows 3 messages: copying 2 more into Junk fails on the second,
    # and imap rolls back the whole COPY.  A plugin that wrote at copy time
    # (not at commit) would have recorded the first sender.
    d = junk_dovecot(dovecot_for, [user],
                     "  quota = maildir:User quota\n  quota_rule = *:messages=3\n",
                     stock_plugins=("lib10_quota_plugin.so",),
                     mail_plugins="quota homemail_junk")
    c = session(d, user)
    append(c, "INBOX", msg("first@rollback.example"))
    append(c, "INBOX", msg("second@rollback.example"))
    u = uids(c, "INBOX")
    typ, data = c.uid("COPY", ",".join(u), "Junk")
    assert typ == "NO", (typ, data)
    assert uids(c, "Junk") == []
    assert kinds(user) == {}
    assert not os.path.exists(os.path.join(user.maildir, "homemail-junklist"))
    # the same session still teaches on a later, successful move
    assert uids(c, "INBOX") == u
    assert c.uid("MOVE", u[0], "Junk")[0] == "OK"
    assert kinds(user) == {"first@rollback.example": "B"}
    c.logout()
    no_crash(d)


def test_two_sessions_at_once(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    n = 15
    setup = session(d, user)
    for who in ("a", "b"):
        for i in range(n):
            append(setup, "INBOX", msg(f"{who}{i}@concurrent.example", subject=f"{who}-{i}"))
    setup.logout()
    errors = []
    barrier = threading.Barrier(2)

    def mover(who):
        try:
            c = d.imap(user)
            c.select("INBOX")
            typ, data = c.uid("SEARCH", "SUBJECT", f"{who}-")
            mine = data[0].decode().split()
            barrier.wait()
            for u in mine:          # one transaction each: many concurrent commits
                typ, data = c.uid("MOVE", u, "Junk")
                if typ != "OK":
                    errors.append((who, u, data))
            c.logout()
        except Exception as ex:      # noqa: BLE001 - reported below
            errors.append((who, repr(ex)))

    ts = [threading.Thread(target=mover, args=(w,)) for w in ("a", "b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert errors == []
    k = kinds(user)     # read_list asserts every line is well formed
    want = {f"{w}{i}@concurrent.example": "B" for w in ("a", "b") for i in range(n)}
    assert k == want
    assert not os.path.exists(os.path.join(user.maildir, "homemail-junklist.tmp"))
    no_crash(d)


def test_hostile_from_headers(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user])
    c = session(d, user)
    hostile = [
        "no address at all",
        "<>",
        "Unterminated <oops@",
        "=?UTF-8?B?!!!not-base64?= <encoded@spam.example>",
        "=?ISO-8859-1?Q?J=F6rg_=22Spammer=22?= <joerg@spam.example>",
        '"a b"@quoted.example',
        ",,,;;;:::<<<>>>",
        "x" * 5000 + "@long.example",
        ", ".join(f"u{i}@many.example" for i in range(3000)),
        "\u00e9l\u00e8ve@utf8.example",
    ]
    for h in hostile:
        raw = msg("placeholder@x.example").replace(b"From: placeholder@x.example",
                                                      b"From: " + h.encode())
        append(c, "INBOX", raw)
    append(c, "INBOX", hmtest.make_message(sender="x@y").replace(b"From: x@y\r\n", b""))
    u = uids(c, "INBOX")
    typ, data = c.uid("MOVE", ",".join(u), "Junk")
    assert typ == "OK", data
    assert len(uids(c, "Junk")) == len(hostile) + 1
    k = kinds(user)
    assert k == {"encoded@spam.example": "B", "joerg@spam.example": "B",
                 "u0@many.example": "B", "\u00e9l\u00e8ve@utf8.example": "B"}
    c.noop()
    c.logout()
    no_crash(d)


def test_huge_list_is_bounded(user, dovecot_for):
    d = junk_dovecot(dovecot_for, [user], "  homemail_junk_max_entries = 1000\n")
    c = session(d, user)       # creates the Maildir
    p = os.path.join(user.maildir, "homemail-junklist")
    with open(p, "w") as f:
        f.write("# pre-filled\n")
        for i in range(60000):
            f.write(f"B {1000 + i} old{i}@bulk.example\n")
        f.write("garbage line \x01\x02\n")
    os.chown(p, user.uid, user.gid)
    os.chmod(p, 0o600)
    append(c, "INBOX", msg("fresh@spam.example"))
    u = uids(c, "INBOX")
    t0 = time.monotonic()
    assert c.uid("MOVE", u[0], "Junk")[0] == "OK"
    took = time.monotonic() - t0
    lst = read_list(user)
    assert len(lst) == 1000
    assert lst["fresh@spam.example"][0] == "B"
    assert "old0@bulk.example" not in lst          # the oldest went first
    assert "old59999@bulk.example" in lst
    print(f"MOVE with a 60000-entry list trimmed to 1000: {took * 1000:.0f} ms")
    c.logout()
    no_crash(d)


LEARN = """#!/bin/sh
# test learn command: record kind and the messages, then maybe sleep
out={out}
n=$(date +%s%N)
echo "$1" > $out/$n.kind
shift
for f in "$@"; do cat "$f" >> $out/$n.msgs; echo "$f" >> $out/$n.files; done
touch $out/$n.done
{tail}
"""


def learn_setup(tail=""):
    hmtest._mkdir(hmtest.BASE, 0o755)
    w = tempfile.mkdtemp(prefix="junklearn-", dir=hmtest.BASE)
    os.chmod(w, 0o755)
    out = os.path.join(w, "out")
    os.mkdir(out)
    os.chmod(out, 0o777)
    script = os.path.join(w, "learn.sh")
    with open(script, "w") as f:
        f.write(LEARN.format(out=out, tail=tail))
    os.chmod(script, 0o755)
    spool = os.path.join(w, "spool")
    os.mkdir(spool)
    os.chmod(spool, 0o1777)
    hmtest._cleanups.append(lambda: shutil.rmtree(w, ignore_errors=True))
    return script, out, spool


def test_learn_command_batches(user, dovecot_for):
    script, out, spool = learn_setup()
    d = junk_dovecot(dovecot_for, [user],
                     f"  homemail_junk_learn_command = {script} %%k\n"
                     f"  homemail_junk_learn_tmpdir = {spool}\n")
    c = session(d, user)
    for i in range(3):
        append(c, "INBOX", msg(f"s{i}@spam.example", subject=f"learnme-{i}"))
    u = uids(c, "INBOX")
    assert c.uid("MOVE", ",".join(u), "Junk")[0] == "OK"
    hmtest.wait_for(lambda: [n for n in os.listdir(out) if n.endswith(".done")], 30,
                    what="learn command to run")
    runs = sorted(n[:-5] for n in os.listdir(out) if n.endswith(".kind"))
    assert len(runs) == 1, "one batch for one transaction"
    assert open(os.path.join(out, runs[0] + ".kind")).read().strip() == "spam"
    data = open(os.path.join(out, runs[0] + ".msgs"), "rb").read()
    for i in range(3):
        assert f"learnme-{i}".encode() in data
    # spooled files are removed once the command is done
    hmtest.wait_for(lambda: os.listdir(spool) == [], 30, what="spool cleanup")
    # and back out of Junk: ham
    ju = uids(c, "Junk")
    assert c.uid("MOVE", ju[0], "INBOX")[0] == "OK"
    hmtest.wait_for(lambda: len([n for n in os.listdir(out) if n.endswith(".done")]) == 2,
                    30, what="second learn run")
    kinds_run = sorted(open(os.path.join(out, n)).read().strip()
                       for n in os.listdir(out) if n.endswith(".kind"))
    assert kinds_run == ["ham", "spam"]
    c.logout()
    no_crash(d)


def test_slow_learn_command_does_not_block(user, dovecot_for):
    script, out, spool = learn_setup(tail="exec sleep 60")
    d = junk_dovecot(dovecot_for, [user],
                     f"  homemail_junk_learn_command = {script} %%k\n"
                     f"  homemail_junk_learn_tmpdir = {spool}\n"
                     "  homemail_junk_learn_timeout = 8s\n")
    c = session(d, user)
    append(c, "INBOX", msg("slow@spam.example"))
    u = uids(c, "INBOX")
    assert c.uid("MOVE", u[0], "Junk")[0] == "OK"
    # the MOVE did not wait for the command: it is still running now (a
    # session that waited would answer only after the 8 s timeout killed it)
    hmtest.wait_for(lambda: hmtest.subprocess.run(
        ["pgrep", "-u", str(user.uid), "-f", "sleep 60"], capture_output=True).returncode == 0,
        6, 0.05, "the learn command still running after MOVE answered")
    assert c.noop()[0] == "OK"
    # killed after the timeout, spool removed, sleep gone
    hmtest.wait_for(lambda: os.listdir(spool) == [], 40, what="timeout kill + cleanup")
    ps = hmtest.subprocess.run(["pgrep", "-u", str(user.uid), "-f", "sleep 60"],
                               capture_output=True, text=True)
    assert ps.stdout.strip() == ""
    assert kinds(user) == {"slow@spam.example": "B"}
    c.logout()
    no_crash(d)
