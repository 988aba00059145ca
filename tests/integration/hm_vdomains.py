"""hm_vdomains.py — a two-domain world for the vdomains tests: a private
Dovecot with the package's auth backend (libauthdb_homemail.so) and a private
exim4 running the package's conf.d, sharing one homemail database (users,
domains and aliases tables) as docs/domains.md describes.

    w = VWorld(); w.start()
    w.add_virtual("ana@ventas.com.bo")      # homemail-user add, own uid
    w.alias("sales@ventas.com.bo", "ana@ventas.com.bo")
    w.send(["ana@ventas.com.bo"], tag)      # SMTP from an outside address
    w.stop()

Everything is created under /var/tmp/hmtest (hmtest's workdirs) and removed
by hmtest's cleanup; the virtual accounts' uids are unused numbers above
29000, never a real account's.
"""
import os
import pwd
import secrets
import smtplib
import subprocess

import hmtest

OUTSIDE = "127.0.0.2"
DOMAINS = ("home.com.bo", "ventas.com.bo")


def free_uid():
    """An uid no passwd entry has (and no earlier call returned)."""
    while True:
        uid = 29000 + secrets.randbelow(20000)
        if uid in free_uid.taken:
            continue
        try:
            pwd.getpwuid(uid)
        except KeyError:
            free_uid.taken.add(uid)
            return uid


free_uid.taken = set()


class Virtual:
    """A virtual account of the users file."""

    def __init__(self, address, password, uid, home):
        self.address = self.name = address
        self.password = password
        self.uid = self.gid = uid
        self.home = home
        self.maildir = os.path.join(home, "Maildir")

    def __repr__(self):
        return f"Virtual({self.address})"


class VWorld:
    def __init__(self, system_users=(), domains_text=None):
        # auth-vtest-master: a master-type listener anybody may use (tests
        # only): it answers about any user, so homemail-deliver's own uid
        # check can be seen refusing, not just Dovecot's per-uid auth-userdb
        self.d = hmtest.PackageDovecot(None, users=list(system_users), auth_backend=True,
                                       extra_conf="auth_verbose = yes\nservice auth {\n"
                                       "  unix_listener auth-vtest-master {\n    mode = 0666\n"
                                       "  }\n}\n")
        w = self.d.w
        self.users_path = os.path.join(w, "homemail-users")
        self.domains_path = os.path.join(w, "domains")
        self.aliases_path = os.path.join(w, "aliases")
        with open(self.domains_path, "w") as f:
            f.write(domains_text if domains_text is not None else "\n".join(DOMAINS) + "\n")
        os.chmod(self.domains_path, 0o644)
        self.vmail = hmtest._workdir("vmail")
        self.deliver_conf = os.path.join(self.vmail, "deliver.conf")
        with open(self.deliver_conf, "w") as f:
            f.write(f"auth_socket = {self.d.auth_userdb_socket}\n")
        os.chmod(self.deliver_conf, 0o644)
        self.open_master_conf = os.path.join(self.vmail, "deliver-open-master.conf")
        with open(self.open_master_conf, "w") as f:
            f.write(f"auth_socket = {os.path.join(self.d.base_dir, 'auth-vtest-master')}\n")
        os.chmod(self.open_master_conf, 0o644)
        self.e = None

    def start(self):
        self.d.start()
        # SANITIZE=1: the routers load the ASan-built homemail_scan.so in the
        # delivery process, and Exim delivers in a re-exec of its setuid
        # binary, where glibc ignores LD_PRELOAD (AT_SECURE): the ASan
        # runtime would be missing.  So messages are queued and delivered by
        # queue runs that root starts with the sanitizer environment (flush).
        queue = "queue_only = true\n" if hmtest.SANITIZE else ""
        self.e = hmtest.PackageExim(
            self.d, user_check=True, domains_file=self.domains_path,
            macros=f"HOMEMAIL_LDA_ARGS = --config {self.deliver_conf}\n{queue}")
        self.e.start()
        return self

    def flush(self):
        """Deliver what is queued (only queued under SANITIZE=1, see start)."""
        if hmtest.SANITIZE:
            self.e.queue_run()

    def stop(self):
        if self.e:
            self.e.stop()
        self.d.stop()

    def cli(self, *args, input=None):
        return subprocess.run([os.path.join(hmtest.BUILD, "homemail-user"),
                               "--users", self.users_path, "--domains", self.domains_path,
                               "--aliases", self.aliases_path] + list(args),
                              input=input, capture_output=True, text=True)

    def add_virtual(self, address, uid=None, home=None):
        uid = uid or free_uid()
        local, dom = address.split("@")
        home = home or os.path.join(self.vmail, dom, local)
        pw = "Pw-" + secrets.token_hex(6)
        r = subprocess.run([os.path.join(hmtest.BUILD, "homemail-user"), "--users",
                            self.users_path, "add", address, "--uid", str(uid), "--gid",
                            str(uid), "--home", home, "--password-stdin"],
                           input=pw + "\n", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        # the parents homemail-user made are root's, 0755
        return Virtual(address, pw, uid, home)

    def alias(self, source, *targets):
        r = self.cli("alias", "add", source, *targets)
        assert r.returncode == 0, r.stderr
        return r

    def rcpt_codes(self, rcpts, source=OUTSIDE):
        """RCPT TO answers, one session from an outside address."""
        out = {}
        with smtplib.SMTP("127.0.0.1", self.e.smtp_port, source_address=(source, 0),
                          timeout=60) as s:
            s.ehlo("outside.example")
            s.mail("sender@outside.example")
            for r in rcpts:
                out[r] = s.rcpt(r)
            s.rset()
        return out

    def send(self, rcpts, tag, sender="sender@outside.example", subject=None, source=OUTSIDE):
        msg = (f"From: <{sender}>\r\nTo: <{rcpts[0]}>\r\nSubject: {subject or tag}\r\n"
               f"Message-ID: <{tag}@probe.test>\r\nDate: Sat, 05 Dec 2026 08:00:00 +0000\r\n"
               f"\r\nbody of {tag}\r\n").encode()
        return hmtest.send(self.e.smtp_port, sender, rcpts, msg, source=source)


def wait_stored(world, maildir, tag, n=1, timeout=30):
    """Poll (flushing the queue) until n messages with tag are in maildir."""
    def got():
        world.flush()
        return len(stored(maildir, tag)) >= n
    hmtest.wait_for(got, timeout, 0.1, f"{tag} in {maildir}")
    return stored(maildir, tag)


def stored(maildir, tag):
    """Message files under maildir (any folder) holding this tag's Message-ID."""
    out = []
    for d, _, files in os.walk(maildir):
        if os.path.basename(d) not in ("new", "cur"):
            continue
        for n in files:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                if f"Message-ID: <{tag}@probe.test>".encode() in f.read():
                    out.append(p)
    return out
