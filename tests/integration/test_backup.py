"""test_backup.py — homemail-backup and homemail-restore (issue 19) against a
private dovecot running the package's configuration, read back with real
clients: IMAP over TLS and ManageSieve (hm_backup.py).

  * back up, delete the user's Maildir and Sieve scripts, restore: every
    folder, message, flag, keyword, subscription and script (and which one
    is active) reads back identical; the host file in the archive too;
  * restore into Restored-<date>: the backup appears under that folder, the
    live mailbox and scripts are untouched, the scripts come back aside;
    then --replace makes the mailbox the backup exactly;
  * a backup taken while messages are being delivered and marked read
    restores consistently: every message whole, none twice, none that was
    there when the backup began missing;
  * Roundcube's database (a Roundcube-like SQLite file owned by www-data,
    rows committed but still in its -wal file): backed up consistently
    with SQLite's online backup, never as a raw copy of the live file;
    after users' settings, identities and contacts are changed or deleted,
    `homemail-restore roundcube` (and `host`) put back every row, the file
    keeps its owner and mode; a symlink in the database's place is refused;
  * a target that cannot be written: exit 1 and result=error in the state
    file; hostile input (a user name with ../, an unknown archive, a user
    not in the archive) is refused with a clear message and changes
    nothing.
"""
import datetime
import hashlib
import os
import shutil
import sqlite3
import subprocess
import threading

import pytest

import hmtest
import hm_backup as hb

DELIVER = os.path.join(hmtest.BUILD, "homemail-deliver")


@pytest.fixture
def world():
    u = hmtest.make_user()
    d = hmtest.PackageDovecot(users=[u]).start()
    b = hb.Backup(d, [u])
    b.init()
    yield u, d, b
    d.stop()


def populate(d, u):
    """Folders, messages with flags and keywords, subscriptions, scripts."""
    c = d.imap(u)
    for f in ("Work", "Work.2026", "Archivo", "Trash"):
        c.create(f)
    c.subscribe("Work")
    c.subscribe("Work.2026")
    c.unsubscribe("Archivo")
    msgs = [("INBOX", r"(\Seen $Important)"), ("INBOX", r"(\Flagged Proyecto)"),
            ("INBOX", None), ("Work", r"(\Answered \Seen)"),
            ("Work.2026", r"(\Draft $Label1 Proyecto)"), ("Archivo", r"(\Deleted)"),
            ("INBOX", r"(\Seen)")]
    for i, (box, flags) in enumerate(msgs):
        body = (f"From: a{i}@example.org\r\nTo: {u.address}\r\nSubject: m{i} \xe9\r\n"
                f"Message-ID: <m{i}@example.org>\r\n\r\nbody {i}\r\n" + "x" * (i * 900)).encode()
        typ, data = c.append(box, flags, None, body)
        assert typ == "OK", data
    c.logout()
    hb.put_scripts(d, u, {"main": 'require ["fileinto"];\nif header :contains "subject" "m4" '
                                  '{ fileinto "Work"; }\n',
                          "spare": "keep;\n"}, "main")


def wipe(u):
    # moved aside first: an imap process may still be writing its index
    for p in (u.maildir, os.path.join(u.home, "sieve")):
        os.rename(p, p + ".gone")
        shutil.rmtree(p + ".gone")
    os.unlink(os.path.join(u.home, ".dovecot.sieve"))


def test_backup_delete_restore_identical(world):
    u, d, b = world
    populate(d, u)
    mail, scripts = hb.snapshot(d, u), hb.sieve_snapshot(d, u)
    assert len(mail) == 6 and scripts["active"] == "main", (mail, scripts)
    r = b.backup()
    last = b.last()
    assert last["result"] == "ok" and last["size"] > 0, last
    assert abs(last["time"] - datetime.datetime.now().timestamp()) < 600
    assert "1 mailbox" in last["message"], last
    wipe(u)
    os.unlink(os.path.join(b.etc, "users"))
    assert hb.snapshot(d, u) != mail
    b.restore("user", u.name)
    assert hb.snapshot(d, u) == mail
    assert hb.sieve_snapshot(d, u) == scripts
    # the host's files come back with `host` (over the live mailbox: merged, no duplicates)
    b.restore("host")
    assert open(os.path.join(b.etc, "users")).read().startswith("# a file of the host")
    assert hb.snapshot(d, u) == mail
    assert hb.sieve_snapshot(d, u) == scripts


def test_restore_into_dated_folder(world):
    u, d, b = world
    populate(d, u)
    mail, scripts = hb.snapshot(d, u), hb.sieve_snapshot(d, u)
    b.backup()
    # after the backup: a new message, one expunged, a script changed
    c = d.imap(u)
    c.append("INBOX", None, None, b"Subject: later\r\n\r\nafter the backup\r\n")
    c.select("INBOX")
    c.store("1", "+FLAGS", r"\Deleted")
    c.expunge()
    c.logout()
    hb.put_scripts(d, u, {"main": "discard;\n"}, "main")
    live, live_scripts = hb.snapshot(d, u), hb.sieve_snapshot(d, u)
    b.restore("user", u.name, "--into-folder")
    date = datetime.date.today().isoformat()
    prefix = f"Restored-{date}."
    restored = hb.snapshot(d, u, prefix)
    del restored["subscribed"], mail["subscribed"]
    assert restored == mail
    now = hb.snapshot(d, u)
    assert {k: v for k, v in now.items() if not k.startswith(prefix)
            and k != "subscribed"} == {k: v for k, v in live.items() if k != "subscribed"}
    s = hb.sieve_snapshot(d, u)
    assert s["active"] == "main" and s["scripts"]["main"] == "discard;\n"
    for name, text in scripts["scripts"].items():
        assert s["scripts"][f"Restored-{date}-{name}"] == text
    assert {k: v for k, v in s["scripts"].items() if not k.startswith("Restored-")} \
        == live_scripts["scripts"]
    # --replace: the mailbox becomes the backup exactly (the later message,
    # the Restored- folders gone, the expunged one back), scripts as backed up
    b.restore("user", u.name, "--replace")
    mail_now = hb.snapshot(d, u)
    del mail_now["subscribed"]
    assert mail_now == mail
    s = hb.sieve_snapshot(d, u)
    assert s["active"] == "main" and s["scripts"]["main"] == scripts["scripts"]["main"]


def _message(i):
    body = (f"delivery {i}\n" + ("0123456789abcdef" * 64 + "\n") * 96).encode()  # ~100 KB
    return (f"From: s@example.org\nSubject: c{i}\nX-Body-SHA256: "
            f"{hashlib.sha256(body).hexdigest()}\n\n").encode() + body


def test_backup_during_delivery_restores_whole_messages(world):
    u, d, b = world
    stop = threading.Event()
    delivered = []
    errors = []

    def deliver():
        i = 0
        while not stop.is_set() and i < 2000:
            r = hmtest.as_user(u, [DELIVER, "--maildir", u.maildir, "--no-sieve"],
                               input=_message(i), capture_output=True)
            if r.returncode != 0:
                errors.append(r)
                return
            delivered.append(i)
            i += 1

    def reader():
        # an IMAP client marking mail read: Dovecot renames new/ -> cur/ and
        # the flag part of the file names while the backup runs
        c = d.imap(u)
        while not stop.is_set():
            c.select("INBOX")
            c.store("1:*", "+FLAGS", r"\Seen")
            c.store("1:*", "-FLAGS", r"\Seen")
        c.logout()

    hmtest.as_user(u, [DELIVER, "--maildir", u.maildir, "--no-sieve"], input=_message(-1),
                   check=True)
    threads = [threading.Thread(target=deliver), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        hmtest.wait_for(lambda: len(delivered) >= 30 or errors, 60, what="30 deliveries")
        before = len(delivered)
        b.backup()
        after = len(delivered)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert after > before, "no delivery happened during the backup"
    # the reader's imap process may still be writing its index: move the
    # Maildir out of the way at once, remove it after
    os.rename(u.maildir, u.maildir + ".gone")
    shutil.rmtree(u.maildir + ".gone")
    b.restore("user", u.name)
    c = d.imap(u)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1:*", "(BODY.PEEK[])")
    c.logout()
    seen = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, _, body = item[1].replace(b"\r\n", b"\n").partition(b"\n\n")
        want = [ln.split(b": ")[1] for ln in head.split(b"\n") if ln.startswith(b"X-Body-SHA256")]
        assert want == [hashlib.sha256(body).hexdigest().encode()], head
        seen.append(int(body.split(b"\n")[0].split()[1]))
    assert len(seen) == len(set(seen)), "a message restored twice"
    assert set(range(-1, before)) <= set(seen), "a message delivered before the backup is missing"
    assert max(seen) < after


def test_unwritable_target_writes_error(world):
    u, d, b = world
    populate(d, u)
    b.backup()
    assert b.last()["result"] == "ok"
    # the repository bind-mounted read-only (root ignores modes), in a
    # private mount namespace of the backup's own
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            f'mount --bind "{b.repo}" "{b.repo}" && mount -o remount,bind,ro "{b.repo}" '
            '&& exec "$@"', "sh"]
    r = b.backup(check=False, wrap=wrap)
    assert r.returncode == 1, r
    last = b.last()
    assert last["result"] == "error" and last["size"] == 0, last
    assert "borg" in last["message"] and last["message"] in r.stderr, (last, r.stderr)
    # an SSH target that does not answer is an error too
    with open(b.conf, "a") as f:
        f.write("repository = ssh://nobody@127.0.0.1:1/./repo\n")
    r = b.backup(check=False)
    assert r.returncode == 1 and b.last()["result"] == "error", (r, b.last())


def test_hostile_input_changes_nothing(world):
    u, d, b = world
    populate(d, u)
    b.backup()
    archives = b.archives()
    assert len(archives) == 1, archives
    c = d.imap(u)
    c.append("INBOX", None, None, b"Subject: after\r\n\r\nafter the backup\r\n")
    c.logout()
    mail = hb.snapshot(d, u)
    before = (hb.tree(u.home), hb.tree(b.repo))
    cases = [
        (("user", "../" + u.name), 64, "invalid user name '../"),
        (("user", u.name + "/../x"), 64, "invalid user name"),
        (("user", ".."), 64, "invalid user name"),
        (("--archive", "../../etc", "user", u.name), 64, "invalid archive name"),
        (("--archive", "homemail-1999-01-01T00:00:00", "user", u.name), 1,
         "no archive 'homemail-1999-01-01T00:00:00'"),
        (("user", "hmnosuchuser"), 1, "user hmnosuchuser is not in archive"),
        (("user",), 64, "usage"),
    ]
    for args, code, text in cases:
        r = b.restore(*args, check=False)
        assert r.returncode == code and text in r.stderr, (args, r)
        assert "Traceback" not in r.stderr
    r = b.backup("-u", "../root", check=False)
    assert r.returncode == 64 and "invalid user name" in r.stderr, r
    assert (hb.tree(u.home), hb.tree(b.repo)) == before
    assert hb.snapshot(d, u) == mail


def test_one_failing_user_and_partial_runs(world):
    """A user the userdb does not know makes the run an error, yet the
    others are archived; a -u run makes a partial- archive that neither
    replaces the newest full one as the default nor prunes it."""
    u, d, b = world
    populate(d, u)
    mail = hb.snapshot(d, u)
    with open(b.conf, "a") as f:
        f.write(f"users = {u.name} hmnosuchuser\n")
    r = b.backup(check=False)
    last = b.last()
    assert r.returncode == 1 and last["result"] == "error", (r, last)
    assert "NOT BACKED UP: user hmnosuchuser: not in the userdb" in last["message"], last
    assert "1 mailbox(es)" in last["message"], last
    full = b.archives()
    assert len(full) == 1 and full[0].startswith("homemail-"), full
    c = d.imap(u)
    c.append("INBOX", None, None, b"Subject: only in the partial one\r\n\r\nx\r\n")
    c.logout()
    b.backup("-u", u.name)
    names = b.archives()
    assert len(names) == 2 and names[0] == full[0] and names[1].startswith("partial-"), names
    wipe(u)
    b.restore("user", u.name)                 # the newest *full* archive
    assert hb.snapshot(d, u) == mail
    b.restore("--archive", names[1], "user", u.name)
    assert sum(sum(v.values()) for k, v in hb.snapshot(d, u).items() if k != "subscribed") \
        == sum(sum(v.values()) for k, v in mail.items() if k != "subscribed") + 1


def test_roundcube_database_round_trip(world):
    u, d, b = world
    db = hb.roundcube_db()
    with open(b.conf, "a") as f:
        f.write(f"roundcube_db = {db}\n")
    writer = hb.wal_writer(db)                  # committed rows only in the -wal file
    try:
        want = hb.roundcube_dump(db)
        assert any("Solo en el WAL" in line for line in want)
        b.backup()
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)
    last = b.last()
    assert last["result"] == "ok" and "roundcube database" in last["message"], last
    staged = os.path.join(b.staging, "homemail", "roundcube", "roundcube.sqlite")
    st = os.stat(staged)
    assert st.st_uid == 0 and st.st_mode & 0o077 == 0, oct(st.st_mode)

    def damage():
        c = sqlite3.connect(db)
        c.execute("DELETE FROM contacts")
        c.execute("UPDATE users SET preferences = 'a:0:{}'")
        c.execute("INSERT INTO identities VALUES (NULL, 1, 'Otro', 'otro@example.org', '', 0)")
        c.commit()
        c.close()
        assert hb.roundcube_dump(db) != want

    damage()
    b.restore("roundcube")
    assert hb.roundcube_dump(db) == want
    st = os.stat(db)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (hb.WWW.pw_uid, hb.WWW.pw_gid, 0o660)
    damage()
    b.restore("host")
    assert hb.roundcube_dump(db) == want

    # a link in the database's place is not followed: the run is an error
    os.rename(db, db + ".real")
    os.symlink("/etc/shadow", db)
    r = b.backup(check=False)
    assert r.returncode == 1 and "not a regular file" in b.last()["message"], (r, b.last())
