"""hm_backup — harness pieces for the backup tests (issue 19).

Setup: a private hmtest.PackageDovecot (the package's dovecot conf, IMAP
over TLS and ManageSieve on free ports), a borg repository, staging
directory, passphrase and state file of the test's own, and a
homemail-backup configuration pointing at them (doveadm_config = the
private dovecot.conf).  The programs run are build/'s homemail-backup and
homemail-restore.  `roundcube_db()` makes a Roundcube-like SQLite database
owned by www-data, as dbconfig-common does.

Reading a user back: `snapshot()` reads every mailbox over IMAP (TLS):
its subscriptions, and per mailbox the multiset of (message bytes' SHA-256,
flags and keywords without \\Recent); `sieve_snapshot()` reads every script
and which one is active over ManageSieve (STARTTLS, GETSCRIPT).
"""
import hashlib
import json
import os
import pwd
import re
import sqlite3
import subprocess

import hmtest
from test_sieve_realpath import ManageSieve


def tool(name):
    return os.path.join(hmtest.BUILD, name)


class Backup:
    """A repository + configuration for one test, bound to a dovecot."""

    def __init__(self, dovecot, users, extra=""):
        self.d = dovecot
        self.w = hmtest._workdir("backup")
        self.repo = os.path.join(self.w, "repo")
        self.staging = os.path.join(self.w, "staging")
        self.state = os.path.join(self.w, "state", "last.json")
        keys = hmtest._mkdir(os.path.join(self.w, "keys"), 0o700)
        self.passphrase = os.path.join(keys, "passphrase")
        self.etc = hmtest._mkdir(os.path.join(self.w, "etc-homemail"), 0o755)
        with open(os.path.join(self.etc, "users"), "w") as f:
            f.write("# a file of the host that the backup must carry\n")
        self.conf = os.path.join(self.w, "backup.conf")
        with open(self.conf, "w") as f:
            f.write(f"repository = {self.repo}\npassphrase_file = {self.passphrase}\n"
                    f"staging_dir = {self.staging}\nstate_file = {self.state}\n"
                    f"doveadm_config = {dovecot.conf_path}\n"
                    f"users = {' '.join(u.name for u in users)}\n"
                    f"paths = {self.etc}\nrestore_paths = {self.etc}/users {self.etc}/dkim-absent {self.w}/elsewhere\n"
                    "keep_daily = 3\nkeep_weekly = 0\nkeep_monthly = 0\n"
                    # not this host's Roundcube (the lab's): a test names its own
                    "roundcube_db =\n" + extra)

    def run(self, prog, *args, check=True, wrap=()):
        r = subprocess.run(list(wrap) + [tool(prog), "-c", self.conf] + list(args),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, f"{prog} {args}: exit {r.returncode}\n{r.stdout}{r.stderr}"
        return r

    def init(self):
        return self.run("homemail-backup", "--init")

    def backup(self, *args, **kw):
        return self.run("homemail-backup", *args, **kw)

    def restore(self, *args, **kw):
        return self.run("homemail-restore", *args, **kw)

    def archives(self):
        return self.run("homemail-backup", "--list").stdout.split()

    def last(self):
        with open(self.state) as f:
            return json.load(f)


# ---------------------------------------------------------------------------
_LIST_RE = re.compile(rb'^\((?P<flags>[^)]*)\) "(?P<sep>[^"]*)" (?P<name>.*)$')


def _mailboxes(c, cmd="list"):
    typ, data = getattr(c, cmd)()
    assert typ == "OK", data
    out = []
    for line in data:
        if line is None:          # an empty answer
            continue
        m = _LIST_RE.match(line)
        assert m, line
        name = m.group("name").strip(b'"').decode()
        out.append((name, m.group("flags").decode()))
    return out


def folder(c, name):
    """{(sha256 of the message, flags) : count} of one mailbox, read-only."""
    typ, data = c.select(f'"{name}"', readonly=True)
    assert typ == "OK", (name, data)
    n = int(data[0])
    msgs = {}
    if n == 0:
        return msgs
    typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    for item in data:
        if not isinstance(item, tuple):
            continue
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
        key = (hashlib.sha256(item[1]).hexdigest(),
               " ".join(sorted(f for f in flags if f != "\\Recent")))
        msgs[key] = msgs.get(key, 0) + 1
    return msgs


def snapshot(d, user, prefix=""):
    """Everything a mail client sees of the user's mail (see module doc);
    prefix: only the mailboxes under it, named without it."""
    c = d.imap(user)
    try:
        snap = {"subscribed": sorted(n[len(prefix):] for n, _ in _mailboxes(c, "lsub")
                                     if n.startswith(prefix))}
        for name, flags in _mailboxes(c):
            if "\\Noselect" in flags or not name.startswith(prefix):
                continue
            snap[name[len(prefix):]] = folder(c, name)
        return snap
    finally:
        c.logout()


def sieve_snapshot(d, user):
    """{script name: text} and the active one, read over ManageSieve."""
    ms = ManageSieve(d.sieve_port)
    try:
        ms.authenticate(user.name, user.password)
        ok, lines = ms.listscripts()
        assert ok, lines
        scripts, active = {}, None
        for line in lines[:-1]:
            m = re.match(r'^"((?:[^"\\]|\\.)*)"( ACTIVE)?$', line)
            assert m, line
            name = m.group(1)
            if m.group(2):
                active = name
            ok, body = ms.command(f"GETSCRIPT {ms._q(name)}")
            assert ok, body
            scripts[name] = body[0]
        return {"scripts": scripts, "active": active}
    finally:
        ms.logout()


def put_scripts(d, user, scripts, active):
    ms = ManageSieve(d.sieve_port)
    try:
        ms.authenticate(user.name, user.password)
        for name, text in scripts.items():
            ok, lines = ms.putscript(name, text)
            assert ok, lines
        ok, lines = ms.setactive(active)
        assert ok, lines
    finally:
        ms.logout()


def tree(path):
    """{relative path: (mode, size, mtime_ns, link target)} of a tree."""
    out = {}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                             os.readlink(p) if os.path.islink(p) else None)
    return out


# ---------------------------------------------------------------------------
# A Roundcube-like database: the tables holding what users set in Roundcube
# (settings, identities, address book), owned by www-data in a 0770
# directory as dbconfig-common leaves /var/lib/dbconfig-common/sqlite3/roundcube.
ROUNDCUBE_SCHEMA = """
CREATE TABLE users (user_id INTEGER PRIMARY KEY, username TEXT NOT NULL, mail_host TEXT,
                    created DATETIME, preferences TEXT);
CREATE TABLE identities (identity_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
                         name TEXT, email TEXT, signature TEXT, standard INTEGER);
CREATE TABLE contacts (contact_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
                       name TEXT, email TEXT, vcard TEXT);
"""
WWW = pwd.getpwnam("www-data")


def roundcube_db():
    """A fresh Roundcube-like database with two users' settings, identities
    and contacts; returns its path."""
    w = hmtest._workdir("roundcube")
    d = os.path.join(w, "sqlite3", "roundcube")
    os.makedirs(d)
    os.chown(d, WWW.pw_uid, WWW.pw_gid)
    os.chmod(d, 0o770)
    path = os.path.join(d, "roundcube")
    c = sqlite3.connect(path)
    c.executescript(ROUNDCUBE_SCHEMA)
    for uid, name in ((1, "roberto"), (2, "ana@ventas.com.bo")):
        c.execute("INSERT INTO users VALUES (?, ?, 'mail.home.com.bo', '2026-12-05', ?)",
                  (uid, name, 'a:2:{s:8:"timezone";s:14:"America/La_Paz";'
                              's:9:"draft_autosave";i:60;}'))
        c.execute("INSERT INTO identities VALUES (NULL, ?, ?, ?, ?, 1)",
                  (uid, name.title(), name if "@" in name else name + "@home.com.bo",
                   "--\nSaludos, \u00e1\u00e9\u00ed"))
        for i in range(3):
            c.execute("INSERT INTO contacts VALUES (NULL, ?, ?, ?, ?)",
                      (uid, f"Contacto {i}", f"c{i}@example.org",
                       f"BEGIN:VCARD\nVERSION:3.0\nFN:Contacto {i}\nEND:VCARD"))
    c.commit()
    c.close()
    os.chown(path, WWW.pw_uid, WWW.pw_gid)
    os.chmod(path, 0o660)
    return path


def roundcube_dump(path):
    """Every row of every table, as SQL text (what Roundcube would read)."""
    c = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
    try:
        return [line for line in c.iterdump()]
    finally:
        c.close()


# Run as www-data: commits rows that stay in the -wal file (no checkpoint
# while the connection is open), says "ready", holds until stdin closes.
# A copy of the database file alone misses those rows.
WAL_WRITER = r"""
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("INSERT INTO contacts VALUES (NULL, 1, 'Solo en el WAL', 'wal@example.org', '')")
c.execute("UPDATE users SET preferences = ? WHERE user_id = 2",
          ('a:1:{s:8:"language";s:5:"es_ES";}',))
print("ready", flush=True)
sys.stdin.read()
c.close()
"""


def wal_writer(path):
    """Start WAL_WRITER as www-data on path; returns the process once its
    rows are committed (close its stdin to end it)."""
    p = subprocess.Popen(["setpriv", f"--reuid={WWW.pw_uid}", f"--regid={WWW.pw_gid}",
                          "--clear-groups", "--", "/usr/bin/python3", "-I", "-c", WAL_WRITER, path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p
