#!/usr/bin/python3
"""homemail-backup, homemail-restore — backups of a homemail host (issue 19).

One program, two names (the build installs it as both; the name it is run
under picks the role):

  homemail-backup    stage every user's mailbox with `doveadm backup` (a
                     consistent copy made through Dovecot's own locking and
                     indexes, never a raw copy of a Maildir being written),
                     their Sieve scripts and junk lists (a tar written as the
                     user), and archive that plus the host's files
                     (/etc/homemail with the users file, TLS keys and the
                     inventory values; Exim's conf with its DKIM keys;
                     Dovecot's conf; ACME's certificates; the lab
                     credentials) and Roundcube's SQLite database (users'
                     settings, identities, address books: copied with
                     SQLite's online backup, as the file's owner) with
                     borgbackup: deduplicated,
                     encrypted (repokey-blake2, passphrase in a root-only
                     file), pruned by the configured retention.  Writes the
                     state file homemail-status reads (docs/operations.md).
  homemail-restore   one user (merged back into the live mailbox, or into
                     a folder Restored-<date>, or --replace to make it the
                     backup exactly), Roundcube's database, or the whole
                     host onto a freshly provisioned one.

Trust: the user's own files (mail, scripts, junk list) are read and written
only by processes running as that user (doveadm drops to the user's uid;
tar runs under setpriv), so a symlink a user plants can never make root read
or write a file outside that user's reach.  User names and archive names
from the command line are checked against a strict pattern before anything
is touched, and every check (archive exists, user in archive, account on
this host) runs before the first change.

Exit codes: 0 done, 1 failed (the message on stderr, and for a backup in the
state file), 64 usage error.  Python 3 standard library only, and
homemail_admin.py (the config reader and helpers the admin tools share).
"""
import argparse
import base64
import datetime
import fcntl
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

# The shared module (homemail_admin.py): beside this file in build/, else
# the package's private directory; no byte-code caches left behind.
sys.dont_write_bytecode = True
sys.path[:0] = [os.path.dirname(os.path.realpath(__file__)), "@PYTHONDIR@"]
import homemail_admin as hm  # noqa: E402

VERSION = "@VERSION@"
PROG = os.path.basename(sys.argv[0]).removesuffix(".py")
if PROG not in ("homemail-backup", "homemail-restore"):
    PROG = "homemail-backup"

CONFIG = "/etc/homemail/backup.conf"
DEFAULTS = {
    # where the archives go: a local directory or ssh://USER@HOST[:PORT]/PATH
    "repository": "/var/backups/homemail",
    "passphrase_file": "/etc/homemail/backup/passphrase",
    # ssh command for an ssh:// repository (BORG_RSH)
    "ssh_command": "ssh -o BatchMode=yes -i /etc/homemail/backup/id_ed25519",
    # the doveadm copies (kept between runs: the next doveadm backup and
    # borg only look at what changed) and borg's cache
    "staging_dir": "/var/cache/homemail-backup",
    "state_file": "/var/lib/homemail/backup/last.json",
    "paths": "/etc/homemail /etc/exim4 /etc/dovecot /etc/letsencrypt /var/lib/homemail "
             "/root/homemail-lab",
    "exclude": "/etc/homemail/backup/passphrase /var/lib/homemail/backup",
    # what `homemail-restore host` puts back (the rest is the package's and
    # the playbook's, and stays in the archive for reference)
    "restore_paths": "/etc/homemail /etc/exim4/dkim /etc/letsencrypt /var/lib/homemail "
                     "/root/homemail-lab",
    "users": "",
    "keep_daily": "7",
    "keep_weekly": "4",
    "keep_monthly": "6",
    "compression": "lz4",
    "doveadm_config": "",
    "borg": "borg",
    # Roundcube's database: "auto" reads dbconfig-common's answers
    # (ROUNDCUBE_DBCONFIG; none there: no Roundcube, nothing to keep), a
    # path names a SQLite file, empty: not backed up
    "roundcube_db": "auto",
}
ROUNDCUBE_DBCONFIG = "/etc/roundcube/debian-db.php"
ROUNDCUBE_STAGE = "roundcube/roundcube.sqlite"   # inside STAGE
USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}$")
ARCHIVE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}$")
STAGE = "homemail"         # top directory of the staged tree inside an archive
FILE_MEMBERS = ("sieve", ".dovecot.sieve")   # Pigeonhole's defaults (design.md)
JUNKLIST = "homemail-junklist"               # in the Maildir's root (docs/junk.md)


class Failure(Exception):
    """A failure to report: message for stderr and the state file."""


# ---------------------------------------------------------------------------
# configuration
def read_config(path, must_exist):
    """The settings: DEFAULTS overlaid with `key = value` lines of path
    ('#' starts a comment only at the start of a line: a passphrase or ssh
    command may hold one); a bad file is a Failure."""
    try:
        conf = hm.read_config(path, DEFAULTS, must_exist, inline_comments=False,
                              missing="no such configuration file")
    except hm.ConfigError as e:
        raise Failure(str(e)) from None
    for k in ("keep_daily", "keep_weekly", "keep_monthly"):
        if not re.fullmatch(r"\d{1,4}", conf[k]):
            raise Failure(f"{path}: {k} must be a number, not {conf[k]!r}")
    for u in conf["users"].split():
        check_user(u)
    return conf


def check_user(name):
    """name, or UsageError when it cannot be a user name (no '/', no '..')."""
    if not USER_RE.match(name) or ".." in name:
        raise hm.UsageError(f"invalid user name {name!r}")
    return name


def check_archive(name):
    if not ARCHIVE_RE.match(name):
        raise hm.UsageError(f"invalid archive name {name!r}")
    return name


# ---------------------------------------------------------------------------
# helpers around doveadm, setpriv and borg
def run(argv, what, input=None, env=None, cwd=None, ok=(0,), stdout=subprocess.PIPE, stdin=None):
    """Run argv; return the CompletedProcess; Failure naming `what` unless
    its exit code is in ok."""
    try:
        r = subprocess.run(argv, input=input, stdin=stdin, stdout=stdout,
                           stderr=subprocess.PIPE, env=env, cwd=cwd)
    except OSError as e:
        raise Failure(f"{what}: cannot run {argv[0]}: {e.strerror}")
    if r.returncode not in ok:
        err = (r.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise Failure(f"{what}: {argv[0]} exit {r.returncode}: " + " | ".join(err[-4:]))
    return r


class Dove:
    """doveadm/doveconf with the configured dovecot.conf."""

    def __init__(self, conf):
        self.conf = conf["doveadm_config"]

    def adm(self, *args, what, ok=(0,)):
        return run(hm.with_config("doveadm", "-c", self.conf, *args), what, ok=ok)

    def users(self):
        r = self.adm("user", "*", what="listing the users (doveadm user '*')")
        return [u for u in r.stdout.decode().split() if USER_RE.match(u) and ".." not in u]

    def account(self, name):
        """(uid, gid, home) from the userdb, or None when it has no such user."""
        vals = []
        for field in ("uid", "gid", "home"):
            r = self.adm("user", "-f", field, name, what=f"looking up {name}", ok=(0, 67))
            if r.returncode == 67:
                return None
            vals.append(r.stdout.decode().strip())
        uid, gid, home = vals
        if not uid.isdigit() or not gid.isdigit() or not home.startswith("/"):
            raise Failure(f"user {name}: the userdb gives no numeric uid/gid and home")
        return int(uid), int(gid), home

    def maildir(self, home):
        """The user's Maildir from mail_location (maildir:~/Maildir)."""
        r = run(hm.with_config("doveconf", "-c", self.conf, "-h", "mail_location"),
                "reading mail_location")
        loc = r.stdout.decode().strip()
        m = re.match(r"^maildir:([^:]+)", loc)
        if not m:
            raise Failure(f"mail_location {loc!r}: only maildir: is supported")
        path = m.group(1)
        if path.startswith("~/"):
            path = os.path.join(home, path[2:])
        return path


def as_user(uid, gid, argv):
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"] + argv


class Borg:
    """borg with the repository, passphrase and cache of the configuration."""

    def __init__(self, conf):
        self.conf = conf
        self.repo = conf["repository"]
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("BORG_"):
                del env[k]
        base = os.path.join(conf["staging_dir"], "borg")
        env.update(BORG_BASE_DIR=base, BORG_RSH=conf["ssh_command"],
                   BORG_RELOCATED_REPO_ACCESS_IS_OK="no",
                   BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="no",
                   BORG_DISPLAY_PASSPHRASE="no", LANG="C.UTF-8")
        self.env = env

    def _passphrase(self):
        p = self.conf["passphrase_file"]
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            raise Failure(f"{p}: {e.strerror} (the repository's passphrase; "
                          f"`{PROG.replace('restore', 'backup')} --init` creates it)")
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            if st.st_uid != 0 or st.st_mode & 0o077:
                raise Failure(f"{p}: must be owned by root and mode 0600")
            return f.read().strip()

    def __call__(self, *args, what, ok=(0,), cwd=None):
        env = dict(self.env, BORG_PASSPHRASE=self._passphrase())
        os.makedirs(env["BORG_BASE_DIR"], mode=0o700, exist_ok=True)
        return run([self.conf["borg"]] + list(args), what, env=env, cwd=cwd, ok=ok)

    def archive(self, name):
        return f"{self.repo}::{name}"

    def archives(self):
        r = self("list", "--json", self.repo, what="listing the archives")
        return [a["name"] for a in json.loads(r.stdout)["archives"]]

    def latest(self):
        """The newest full archive (partial ones only by name)."""
        names = [n for n in self.archives() if n.startswith("homemail-")]
        if not names:
            raise Failure(f"{self.repo}: no full archive yet")
        return names[-1]


# ---------------------------------------------------------------------------
# homemail-backup
def write_state(path, result, size, message, extra=None):
    """The state file homemail-status reads, replaced atomically."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    state = {"time": int(time.time()), "result": result, "size": int(size),
             "message": message}
    state.update(extra or {})
    hm.write_atomic(path, json.dumps(state, indent=1, sort_keys=True) + "\n")


def stage_user(dove, stage, name):
    """Copy one user's mailbox (doveadm backup, as the user) and Sieve
    scripts + junk list (tar, as the user) into stage; returns a manifest
    entry, or None for a user without a Maildir (nothing to keep)."""
    acct = dove.account(name)
    if acct is None:
        raise Failure(f"user {name}: not in the userdb")
    uid, gid, home = acct
    maildir = dove.maildir(home)
    if not os.path.isdir(maildir):
        return None
    dst = os.path.join(stage, "mail", name)
    if os.path.lexists(dst):
        st = os.lstat(dst)
        if not os.path.isdir(dst) or os.path.islink(dst) or st.st_uid != uid:
            shutil.rmtree(dst) if os.path.isdir(dst) and not os.path.islink(dst) else os.unlink(dst)
    if not os.path.lexists(dst):
        os.mkdir(dst, 0o700)
        os.chown(dst, uid, gid)
    # A one-way sync into the staged copy: Dovecot reads each mailbox under
    # its own lock and index, so a message being delivered is either whole
    # in the copy or not there (docs/operations.md).
    dove.adm("backup", "-u", name, f"maildir:{dst}", what=f"user {name}: doveadm backup")
    members = [m for m in FILE_MEMBERS if os.path.lexists(os.path.join(home, m))]
    rel = os.path.relpath(os.path.join(maildir, JUNKLIST), home)
    if not rel.startswith("..") and os.path.lexists(os.path.join(home, rel)):
        members.append(rel)
    tarpath = os.path.join(stage, "files", name + ".tar")
    if not members:              # tar refuses an empty archive: keep none
        if os.path.lexists(tarpath):
            os.unlink(tarpath)
    else:
        with open(tarpath + ".tmp", "wb") as out:
            run(as_user(uid, gid, ["tar", "-C", home, "--create", "--file=-", "--"] + members),
                f"user {name}: archiving the Sieve scripts", stdout=out)
        os.replace(tarpath + ".tmp", tarpath)
    return {"name": name, "uid": uid, "home": home,
            "maildir": os.path.relpath(maildir, home), "files": members}


def roundcube_db(conf):
    """The path of Roundcube's SQLite database, or None when there is none to
    keep; Failure for a database homemail cannot copy consistently."""
    v = conf["roundcube_db"]
    if not v:
        return None
    if v != "auto":
        if not v.startswith("/"):
            raise Failure(f"roundcube_db {v!r}: not an absolute path")
        return v
    # dbconfig-common's answers: PHP assignments $dbtype='sqlite3'; ...
    try:
        with open(ROUNDCUBE_DBCONFIG, encoding="utf-8") as f:
            text = f.read(65536)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Failure(f"{ROUNDCUBE_DBCONFIG}: {e.strerror}")
    php = dict(re.findall(r"^\$(\w+)\s*=\s*'([^'\\]*)'\s*;", text, re.M))
    if php.get("dbtype") != "sqlite3":
        raise Failure(f"roundcube database ({php.get('dbtype') or 'unknown type'} in "
                      f"{ROUNDCUBE_DBCONFIG}): only sqlite3 is backed up (the playbook's "
                      "choice); set roundcube_db = (empty) and dump it yourself")
    if not php.get("basepath", "").startswith("/") or not php.get("dbname") \
            or "/" in php["dbname"]:
        raise Failure(f"{ROUNDCUBE_DBCONFIG}: no sqlite3 basepath/dbname")
    return os.path.join(php["basepath"], php["dbname"])


# Run as the database file's owner: SQLite's online backup API copies a
# consistent snapshot (committed transactions only, pages of a -wal file
# included) while Roundcube may be writing, then checks the copy.
SQLITE_COPY = r"""
import sqlite3, sys, urllib.parse
src = sqlite3.connect("file:" + urllib.parse.quote(sys.argv[1]) + "?mode=ro", uri=True,
                      timeout=30)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
src.close()
dst.execute("PRAGMA journal_mode=DELETE")   # one self-contained file
ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
dst.close()
if ok != "ok":
    sys.exit("integrity_check of the copy: " + ok)
"""


def sqlite_copy(src, dst, uid, gid, what):
    """Copy the SQLite database src into the new file dst (which must not
    exist), consistently, running as uid/gid (a link planted where src is
    never makes root read another file)."""
    run(as_user(uid, gid, ["/usr/bin/python3", "-I", "-c", SQLITE_COPY, src, dst]), what)


def owned_tmpdir(parent, uid, gid):
    """A fresh directory under parent that only uid may use."""
    d = tempfile.mkdtemp(prefix="sqlite-", dir=parent)
    os.chown(d, uid, gid)
    return d


def stage_roundcube(conf, stage):
    """Roundcube's database into stage/ROUNDCUBE_STAGE (root, 0600); returns
    the manifest entry, or None when there is none (a stale copy goes)."""
    dst = os.path.join(stage, ROUNDCUBE_STAGE)
    path = roundcube_db(conf)
    try:
        st = os.lstat(path) if path else None
    except FileNotFoundError:
        st = None
    if st is None:
        if os.path.lexists(dst):
            os.unlink(dst)
        return None
    if not stat.S_ISREG(st.st_mode):
        raise Failure(f"roundcube database {path}: not a regular file")
    d = os.path.dirname(dst)
    os.makedirs(d, mode=0o700, exist_ok=True)
    if os.path.islink(d) or os.lstat(d).st_uid != 0:
        raise Failure(f"{d}: not a directory of root's")
    os.chmod(d, 0o700)
    tmp = owned_tmpdir(conf["staging_dir"], st.st_uid, st.st_gid)
    try:
        sqlite_copy(path, os.path.join(tmp, "copy.sqlite"), st.st_uid, st.st_gid,
                    f"roundcube database {path}: copying")
        # the copy was written by the file's owner: read it without following links
        fd = os.open(os.path.join(tmp, "copy.sqlite"), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f, open(dst + ".tmp", "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            shutil.copyfileobj(f, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(dst + ".tmp", dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"path": path, "uid": st.st_uid, "gid": st.st_gid,
            "mode": stat.S_IMODE(st.st_mode), "size": os.path.getsize(dst)}


def prepare_stage(conf):
    """The staging tree: root-owned, traversable (doveadm writes each user's
    copy as that user into a directory of its own)."""
    top = conf["staging_dir"]
    os.makedirs(top, mode=0o711, exist_ok=True)
    stage = os.path.join(top, STAGE)
    for d, mode in ((stage, 0o711), (os.path.join(stage, "mail"), 0o711),
                    (os.path.join(stage, "files"), 0o700)):
        if os.path.islink(d):
            raise Failure(f"{d}: is a symlink")
        os.makedirs(d, mode=mode, exist_ok=True)
        st = os.lstat(d)
        if st.st_uid != 0:
            raise Failure(f"{d}: not owned by root")
        os.chmod(d, mode)
    return stage


def lock(conf):
    os.makedirs(conf["staging_dir"], mode=0o711, exist_ok=True)
    f = open(os.path.join(conf["staging_dir"], ".lock"), "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Failure("another homemail-backup or homemail-restore is running")
    return f


def do_init(conf):
    p = conf["passphrase_file"]
    if not os.path.lexists(p):
        os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        print(f"{PROG}: new passphrase in {p}: keep a copy off this host, "
              "no archive can be read without it")
    borg = Borg(conf)
    if not borg.repo.startswith("ssh://"):
        os.makedirs(os.path.dirname(borg.repo.rstrip("/")) or "/", exist_ok=True)
    borg("init", "--encryption=repokey-blake2", "--make-parent-dirs", borg.repo,
         what=f"creating the repository {borg.repo}")
    print(f"{PROG}: repository {borg.repo} created")
    return 0


def evict(stage, names):
    """Remove the staged copies of users no longer backed up."""
    for sub, suffix in (("mail", ""), ("files", ".tar")):
        for n in os.listdir(os.path.join(stage, sub)):
            if n.removesuffix(suffix) not in names:
                p = os.path.join(stage, sub, n)
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)


def do_backup(conf, users_arg):
    """One run: stage every user (one user's failure does not stop the
    others, it makes the run an error), archive, prune, compact, state."""
    t0 = time.time()
    state = conf["state_file"]
    try:
        with lock(conf):
            borg = Borg(conf)
            borg._passphrase()
            dove = Dove(conf)
            stage = prepare_stage(conf)
            names = users_arg or conf["users"].split() or dove.users()
            entries, failed = [], []
            for name in names:
                try:
                    e = stage_user(dove, stage, name)
                except (Failure, OSError) as ex:
                    failed.append(str(ex) if isinstance(ex, Failure)
                                  else f"user {name}: {ex.filename}: {ex.strerror}")
                    continue
                if e is not None:
                    entries.append(e)
            # -u runs make "partial-" archives: never the newest full one,
            # pruned apart, and the other users' staged copies stay
            prefix = "partial-" if users_arg else "homemail-"
            if not users_arg:
                evict(stage, set(names))
            roundcube = None
            if not users_arg:
                try:
                    roundcube = stage_roundcube(conf, stage)
                except (Failure, OSError) as ex:
                    failed.append(str(ex) if isinstance(ex, Failure)
                                  else f"roundcube database: {ex.filename}: {ex.strerror}")
            paths = [p for p in conf["paths"].split() if os.path.lexists(p)]
            # what `restore host` puts back: those of restore_paths that
            # exist now and lie in the archive
            back = [p for p in conf["restore_paths"].split() if os.path.lexists(p)
                    and any(p == q or p.startswith(q.rstrip("/") + "/") for q in paths)]
            manifest = {"format": 1, "version": VERSION, "host": socket.gethostname(),
                        "time": int(t0), "users": entries, "paths": paths,
                        "restore_paths": back, "roundcube": roundcube}
            with open(os.path.join(stage, "manifest.json"), "w") as f:
                json.dump(manifest, f, indent=1)
            name = prefix + datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
            excl = []
            for x in conf["exclude"].split():
                excl += ["--exclude", "pp:" + x.lstrip("/")]
            staged = [f"{STAGE}/manifest.json"]
            for e in entries:
                staged.append(f"{STAGE}/mail/{e['name']}")
                if e["files"]:
                    staged.append(f"{STAGE}/files/{e['name']}.tar")
            if roundcube:
                staged.append(f"{STAGE}/{ROUNDCUBE_STAGE}")
            r = borg("create", "--json", "--compression", conf["compression"],
                     "--exclude-caches", *excl, borg.archive(name), *staged, *paths,
                     what="borg create", ok=(0, 1), cwd=conf["staging_dir"])
            warn = r.stderr.decode("utf-8", "replace").strip() if r.returncode == 1 else ""
            info = json.loads(r.stdout)
            a = info["archive"]["stats"]
            borg("prune", "--glob-archives", prefix + "*",
                 "--keep-daily", conf["keep_daily"], "--keep-weekly", conf["keep_weekly"],
                 "--keep-monthly", conf["keep_monthly"], borg.repo, what="borg prune")
            borg("compact", borg.repo, what="borg compact")
            msg = (f"archive {name}: {len(entries)} mailbox(es), "
                   + ("roundcube database, " if roundcube else "") + f"{a['nfiles']} files, "
                   f"{a['original_size']} bytes, {a['deduplicated_size']} new after "
                   f"deduplication, {time.time() - t0:.1f} s")
            if warn:
                msg += "; borg warned: " + " | ".join(warn.splitlines()[-2:])
            if failed:
                raise Failure(f"{msg}; NOT BACKED UP: " + "; ".join(failed))
            write_state(state, "ok", a["original_size"], msg, {
                "archive": name, "deduplicated_size": a["deduplicated_size"],
                "repository_size": info["cache"]["stats"]["unique_csize"],
                "duration": round(time.time() - t0, 1), "users": len(entries)})
            print(f"{PROG}: {msg}")
            return 0
    except (Failure, OSError) as e:
        err = str(e) if isinstance(e, Failure) else f"{e.filename or ''}: {e.strerror}"
        try:
            write_state(state, "error", 0, err, {"duration": round(time.time() - t0, 1)})
        except OSError as e2:
            print(f"{PROG}: cannot write {state}: {e2.strerror}", file=sys.stderr)
        raise Failure(err) from None


# ---------------------------------------------------------------------------
# homemail-restore
def extract(borg, conf, archive, members):
    """Extract members of archive into a fresh root-only directory under the
    staging directory (0711, so that a user can be given a subtree)."""
    os.makedirs(conf["staging_dir"], mode=0o711, exist_ok=True)
    d = tempfile.mkdtemp(prefix="restore-", dir=conf["staging_dir"])
    os.chmod(d, 0o711)
    try:
        borg("extract", borg.archive(archive), *members, what=f"extracting from {archive}", cwd=d)
    except Failure:
        shutil.rmtree(d, ignore_errors=True)
        raise
    return d


def give_to(path, uid, gid):
    """chown a tree extracted by root to the user, never following a link."""
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)
    os.lchown(path, uid, gid)


def read_manifest(borg, conf, archive):
    d = extract(borg, conf, archive, [f"{STAGE}/manifest.json"])
    try:
        with open(os.path.join(d, STAGE, "manifest.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        raise Failure(f"archive {archive}: no homemail manifest (not made by homemail-backup)")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def restore_user(borg, dove, conf, archive, manifest, name, mode, date):
    """Put one user's mail and scripts back (mode: merge, replace, folder)."""
    entry = next((e for e in manifest["users"] if e["name"] == name), None)
    if entry is None:
        raise Failure(f"user {name} is not in archive {archive}")
    acct = dove.account(name)
    if acct is None:
        raise Failure(f"user {name}: no such account on this host (create it first)")
    uid, gid, home = acct
    if not os.path.isdir(home):
        raise Failure(f"user {name}: home {home} does not exist")
    members = [f"{STAGE}/mail/{name}"] + ([f"{STAGE}/files/{name}.tar"] if entry["files"] else [])
    d = extract(borg, conf, archive, members)
    try:
        src = os.path.join(d, STAGE, "mail", name)
        tarf = os.path.join(d, STAGE, "files", name + ".tar")
        give_to(os.path.join(d, STAGE), uid, gid)
        if os.path.isdir(src):
            if mode == "folder":
                folder = f"Restored-{date}"
                dove.adm("import", "-u", name, "-s", f"maildir:{src}", folder, "all",
                         what=f"user {name}: doveadm import into {folder}")
                # import copies messages: the folders that were empty too
                for box in maildir_folders(src):
                    dove.adm("mailbox", "create", "-s", "-u", name, f"{folder}.{box}",
                             what=f"user {name}: creating {folder}.{box}", ok=(0, 65, 68))
            elif mode == "replace":
                # dsync cannot replace a live INBOX whose GUID differs ("INBOX
                # can't be deleted"): the live Maildir is kept aside and the
                # backup copied into a new one, UIDs and all
                live = dove.maildir(home)
                aside = live + ".replaced-" + time.strftime("%Y%m%dT%H%M%S")
                dove.adm("kick", name, what=f"user {name}: doveadm kick", ok=(0, 68))
                if os.path.lexists(live):
                    os.rename(live, aside)
                    print(f"{PROG}: user {name}: the mailbox it replaces is kept as {aside}")
                dove.adm("backup", "-R", "-u", name, f"maildir:{src}",
                         what=f"user {name}: doveadm backup -R")
            else:
                dove.adm("sync", "-1", "-R", "-u", name, f"maildir:{src}",
                         what=f"user {name}: doveadm sync -1 -R")
        if os.path.isfile(tarf):
            if mode == "folder":
                restore_scripts_aside(tarf, uid, gid, home, date)
            else:
                with open(tarf, "rb") as f:
                    run(as_user(uid, gid, ["tar", "-C", home, "--extract", "--file=-",
                                           "--no-same-owner", "--no-overwrite-dir"]),
                        f"user {name}: restoring the Sieve scripts", stdin=f)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    where = f"folder Restored-{date}" if mode == "folder" else "the live mailbox"
    print(f"{PROG}: user {name} restored from {archive} into {where}")


def mutf7_decode(name):
    """IMAP modified UTF-7 (RFC 3501 5.1.3) to text, as Maildir++ names
    folders on disk; a malformed name is returned as it is."""
    out, i = [], 0
    try:
        while i < len(name):
            j = name.find("&", i)
            if j < 0:
                out.append(name[i:])
                break
            out.append(name[i:j])
            k = name.index("-", j)
            b64 = name[j + 1:k].replace(",", "/")
            out.append("&" if not b64 else
                       base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be"))
            i = k + 1
        return "".join(out)
    except (ValueError, UnicodeDecodeError):
        return name


def maildir_folders(path):
    """The folder names (without INBOX) of a Maildir++ tree."""
    return sorted(mutf7_decode(n[1:]) for n in os.listdir(path)
                  if n.startswith(".") and n not in (".", "..")
                  and os.path.isfile(os.path.join(path, n, "maildirfolder")))


def restore_scripts_aside(tarf, uid, gid, home, date):
    """--into-folder: the archived scripts become inactive ManageSieve
    scripts Restored-<date>-NAME beside the live ones (written as the user,
    never over an existing file)."""
    import tarfile
    with tarfile.open(tarf) as t:
        for m in t.getmembers():
            if not (m.isfile() and m.name.startswith("sieve/") and m.name.endswith(".sieve")
                    and m.name.count("/") == 1):
                continue
            data = t.extractfile(m).read()
            target = os.path.join(home, "sieve", f"Restored-{date}-" + m.name[6:])
            run(as_user(uid, gid, ["sh", "-c", 'mkdir -p "$1" && set -C && cat > "$2"', "sh",
                                   os.path.join(home, "sieve"), target]),
                f"writing {target}", input=data)


def live_roundcube(conf, entry):
    """(path, lstat) of the live Roundcube database to restore entry onto;
    Failure when there is none."""
    path = roundcube_db(conf) or entry["path"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Failure(f"roundcube database {path}: missing (install Roundcube first: "
                      "run the playbook)") from None
    if not stat.S_ISREG(st.st_mode):
        raise Failure(f"roundcube database {path}: not a regular file")
    return path, st


def restore_roundcube(borg, conf, archive, manifest):
    """Put Roundcube's database back: the archived copy is written into the
    live database with SQLite's backup API (one transaction, under SQLite's
    lock: Roundcube's requests see the old or the restored database, never
    a mix), as the live file's owner. The live file must exist (the
    playbook installed Roundcube); it keeps its owner and mode."""
    entry = manifest.get("roundcube")
    if not entry:
        raise Failure(f"archive {archive} holds no Roundcube database")
    path, st = live_roundcube(conf, entry)
    d = extract(borg, conf, archive, [f"{STAGE}/{ROUNDCUBE_STAGE}"])
    try:
        tmp = owned_tmpdir(conf["staging_dir"], st.st_uid, st.st_gid)
        try:
            src = os.path.join(tmp, "restore.sqlite")
            shutil.copyfile(os.path.join(d, STAGE, ROUNDCUBE_STAGE), src)
            os.chown(src, st.st_uid, st.st_gid)
            run(as_user(st.st_uid, st.st_gid,
                        ["/usr/bin/python3", "-I", "-c", SQLITE_RESTORE, src, path]),
                f"roundcube database {path}: restoring")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{PROG}: roundcube database {path} restored from {archive}")


# Run as the live database's owner: the archived copy (checked first) onto
# the live file through SQLite's backup API.
SQLITE_RESTORE = r"""
import sqlite3, sys, urllib.parse
src = sqlite3.connect("file:" + urllib.parse.quote(sys.argv[1]) + "?mode=ro", uri=True)
ok = src.execute("PRAGMA integrity_check").fetchone()[0]
if ok != "ok":
    sys.exit("integrity_check of the archived copy: " + ok)
dst = sqlite3.connect("file:" + urllib.parse.quote(sys.argv[2]) + "?mode=rw", uri=True,
                      timeout=30)
src.backup(dst)
dst.close()
"""


def restore_host(borg, dove, conf, archive, manifest):
    """The whole host: restore_paths of the archive over /, then each user."""
    missing = [e["name"] for e in manifest["users"] if dove.account(e["name"]) is None]
    if missing:
        raise Failure("no account on this host for: " + " ".join(missing)
                      + " (provision the host with the same inventory first)")
    if manifest.get("roundcube"):
        live_roundcube(conf, manifest["roundcube"])     # checked before any change
    keep = [p.lstrip("/") for p in manifest.get("restore_paths", [])]
    if keep:
        borg("extract", borg.archive(archive), *keep, what="restoring the host's files", cwd="/")
        print(f"{PROG}: restored " + " ".join("/" + p for p in keep))
    date = datetime.date.today().isoformat()
    for e in manifest["users"]:
        restore_user(borg, dove, conf, archive, manifest, e["name"], "merge", date)
    if manifest.get("roundcube"):
        restore_roundcube(borg, conf, archive, manifest)
    print(f"{PROG}: now re-run the playbook, then restart exim4 and dovecot")


def do_restore(conf, a):
    with lock(conf):
        borg = Borg(conf)
        dove = Dove(conf)
        archive = a.archive
        if archive is None:
            archive = borg.latest()
        elif archive not in borg.archives():
            raise Failure(f"no archive {archive!r} in {borg.repo} (homemail-backup --list)")
        manifest = read_manifest(borg, conf, archive)
        if a.what == "host":
            restore_host(borg, dove, conf, archive, manifest)
        elif a.what == "roundcube":
            restore_roundcube(borg, conf, archive, manifest)
        else:
            mode = "folder" if a.into_folder else "replace" if a.replace else "merge"
            restore_user(borg, dove, conf, archive, manifest, a.name, mode,
                         datetime.date.today().isoformat())
    return 0


# ---------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(hm.EX_USAGE)


def parser():
    if PROG == "homemail-restore":
        p = Parser(prog=PROG, description="Restore mail from homemail-backup's archives.",
                   usage=f"{PROG} [-c FILE] [--archive NAME] "
                         "(user NAME [--into-folder | --replace] | roundcube | host)")
        p.add_argument("-c", "--config", default=CONFIG)
        p.add_argument("--archive", help="archive to restore from (default: the newest)")
        p.add_argument("--version", action="store_true")
        sub = p.add_subparsers(dest="what", parser_class=Parser)
        u = sub.add_parser("user", help="one user's mailbox and Sieve scripts")
        u.add_argument("name")
        g = u.add_mutually_exclusive_group()
        g.add_argument("--into-folder", action="store_true",
                       help="into a folder Restored-<date>, the live mailbox untouched")
        g.add_argument("--replace", action="store_true",
                       help="make the mailbox exactly the backup (later mail is removed)")
        sub.add_parser("roundcube", help="Roundcube's database (settings, identities, "
                                         "address books)")
        sub.add_parser("host", help="every user, the host's files and Roundcube's database")
        return p
    p = Parser(prog=PROG, description="Back up a homemail host with borgbackup.",
               usage=f"{PROG} [-c FILE] [--init | --list | [-u USER]...]")
    p.add_argument("-c", "--config", default=CONFIG)
    p.add_argument("--init", action="store_true", help="create the passphrase and repository")
    p.add_argument("--list", action="store_true", help="list the archives")
    p.add_argument("-u", "--user", action="append", default=[],
                   help="back up only this user (repeatable)")
    p.add_argument("--version", action="store_true")
    return p


def main(argv):
    p = parser()
    a = p.parse_args(argv)
    if a.version:
        print(f"{PROG} {VERSION}")
        return 0
    if os.geteuid() != 0:
        raise Failure("must run as root")
    if PROG == "homemail-restore":
        if a.what is None:
            raise hm.UsageError("say what to restore: user NAME, roundcube or host")
        if a.what == "user":
            check_user(a.name)
        if a.archive is not None:
            check_archive(a.archive)
        return do_restore(read_config(a.config, True), a)
    for u in a.user:
        check_user(u)
    if a.init + a.list + bool(a.user) > 1:
        raise hm.UsageError("--init, --list and --user do not go together")
    try:
        conf = read_config(a.config, not a.init)
    except Failure as e:
        if not (a.init or a.list):    # cron's run: homemail-status must see it
            try:
                write_state(DEFAULTS["state_file"], "error", 0, str(e))
            except OSError:
                pass
        raise
    if a.init:
        return do_init(conf)
    if a.list:
        borg = Borg(conf)
        print("\n".join(borg.archives()))
        return 0
    return do_backup(conf, a.user)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except hm.UsageError as e:
        print(f"usage: see {PROG} --help\n{PROG}: {e}", file=sys.stderr)
        sys.exit(hm.EX_USAGE)
    except Failure as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(1)
