"""hm_backup — harness pieces for the backup tests (issue 19).

Setup: a private hmtest.PackageDovecot (the package's dovecot conf, IMAP
over TLS and ManageSieve on free ports), a borg repository, staging
directory, passphrase and state file of the test's own, and a
homemail-backup configuration pointing at them (doveadm_config = the
private dovecot.conf).  The programs run are build/'s homemail-backup and
homemail-restore.

Reading a user back: `snapshot()` reads every mailbox over IMAP (TLS):
its subscriptions, and per mailbox the multiset of (message bytes' SHA-256,
flags and keywords without \\Recent); `sieve_snapshot()` reads every script
and which one is active over ManageSieve (STARTTLS, GETSCRIPT).
"""
import hashlib
import json
import os
import re
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
                    "keep_daily = 3\nkeep_weekly = 0\nkeep_monthly = 0\n" + extra)

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
