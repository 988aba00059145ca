"""hm_pair.py — two homemail mail hosts kept in sync by Dovecot's replicator,
each in its own network namespace, running what the playbook renders.

The configuration is not written here: ansible/render.yml renders the
roles' templates for ansible/inventories/pair into one tree per host
(local.conf, 92-homemail-replication.conf, deliver.conf), and each host
runs the harness's PackageDovecot (the package's 90-homemail.conf) with
its rendered files appended.  Only the plumbing of a private instance is
changed in the rendered text, the way PackageDovecot changes the package's
paths: /run/dovecot/ becomes the instance's base_dir, the doveadm port a
free one, the CA file the pair's test certificate, the system log path the
instance's.

Per host: a world namespace (hm_world), a Dovecot inside it (IMAP on
127.0.0.1 and the host's address, doveadm over TLS on the host's address),
an Exim inside it (hmtest.PackageExim) delivering through homemail-deliver
with the host's rendered deliver.conf.  Both hosts serve the same system
test accounts, each with its own home (a userdb passwd-file per host), so
one machine holds two independent mail stores.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import hm_world
import hmtest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(TOP, "ansible")
DOMAIN = hmtest.MAIL_DOMAIN
NAMES = {"a": "mail-a", "b": "mail-b", "backup": "mx-backup"}
INDEX = {"a": 10, "b": 11, "backup": 12}
SENDER_DOMAIN = "pair.test"
# the replication role's replication_dsync_group (created by the role on a
# real host, by render() here)
DSYNC_GROUP = "homemail-dsync"


def render(world, extra_vars=None):
    """ansible-playbook render.yml for inventories/pair with the world's
    addresses (and extra_vars, e.g. replication_peer="" renders single
    hosts); returns the render directory (one subdirectory per host)."""
    # the rendered aggregator has a listener for the virtual accounts'
    # owner's group (docs/domains.md: vmail): Dovecot needs the group
    # and the replicator's doveadm socket belongs to the group the
    # replication role creates for dsync (docs/replication.md, "-U")
    for g in ("vmail", DSYNC_GROUP):
        if subprocess.run(["getent", "group", g], capture_output=True).returncode != 0:
            subprocess.run(["groupadd", "--system", g], check=True)
    d = hmtest._workdir("pair-render")
    extra = []
    for k, v in (extra_vars or {}).items():
        extra += ["-e", f"{k}={v}"]
    r = subprocess.run(["ansible-playbook", "-i", "inventories/pair", "render.yml",
                        "-e", f"render_dir={d}", "-e", f"pair_net={world.prefix}"] + extra,
                       cwd=ANSIBLE, capture_output=True, text=True,
                       env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="default",
                                ANSIBLE_CALLBACKS_ENABLED="", ANSIBLE_NOCOLOR="1"))
    if r.returncode != 0:
        raise RuntimeError("render.yml failed:\n" + r.stdout[-3000:] + r.stderr[-2000:])
    return d


def pair_cert():
    """A self-signed certificate for every name of the pair (the doveadm
    client checks the peer's name against it): (cert, key)."""
    d = hmtest._workdir("pair-cert")
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    sans = ",".join(f"DNS:{n}.{DOMAIN}" for n in NAMES.values())
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
                    "-subj", f"/CN=mail.{DOMAIN}", "-addext",
                    f"subjectAltName=DNS:mail.{DOMAIN},{sans},DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    os.chmod(crt, 0o644)
    os.chmod(key, 0o644)
    return crt, key


def junk_plugin_dir():
    """A mail_plugin_dir: the stock modules (symlinks) and the built junk
    plugin (the package installs it among them)."""
    d = hmtest._workdir("pair-modules")
    os.chmod(d, 0o755)
    stock = "/usr/lib/dovecot/modules"
    for n in os.listdir(stock):
        if n != "lib90_homemail_junk_plugin.so":     # (a lab host has one installed)
            os.symlink(os.path.join(stock, n), os.path.join(d, n))
    shutil.copy2(os.path.join(hmtest.BUILD, "lib90_homemail_junk_plugin.so"), d)
    return d


class PairDovecot(hmtest.PackageDovecot):
    """PackageDovecot inside a world host with the host's rendered files,
    and homemail's junk plugin loaded as the package's junk.conf.ext does
    (globally: IMAP moves teach, doveadm's dsync merges the peer's lists).

    rendered_authdb=True (a mail host with auth_backend=True): the package's
    account database (the built libauthdb_homemail.so) with the arguments
    render.yml made for this host (dovecot-authdb.conf: its share of the
    lockout budget), the users file and lockout state pointed at this
    instance; only its userdb is replaced by the host's own homes, as for
    the passwd userdb (both hosts are one machine: the accounts' system
    homes would be one mail store)."""

    def __init__(self, host, rendered, users, cert, rendered_authdb=False, **kw):
        self.host, self.rendered, self.pair_cert = host, rendered, cert
        self.rendered_authdb = rendered_authdb
        self.doveadm_port = hmtest.free_port()
        self.homes = hmtest._workdir(f"pair-{host.name}-home")
        self.userdb_file = None
        self._users_for_db = list(users)
        kw["extra_conf"] = kw.get("extra_conf", "") + (
            f"mail_plugin_dir = {junk_plugin_dir()}\n" + hmtest.sanitizer_dovecot_conf())
        if hmtest.SANITIZE:
            kw.setdefault("env", hmtest.sanitizer_env())
        super().__init__(users=users, **kw)

    def doveadm(self, *args, input=None, check=False):
        """doveadm with the sanitizer runtimes (SANITIZE=1: the junk plugin)."""
        return subprocess.run(["doveadm", "-c", self.conf_path] + list(args), input=input,
                              capture_output=True, text=True, check=check,
                              env=dict(os.environ, **(self.env or {})))

    def _conf_text(self, **fields):
        w = fields["w"]
        text = super()._conf_text(**fields)
        # the pair's certificate (names of both hosts) instead of the test one
        for p in (os.path.join(w, "conf.d", "90-homemail.conf"), None):
            t = open(p).read() if p else text
            t = t.replace(fields["cert"], self.pair_cert[0]).replace(fields["key"],
                                                                   self.pair_cert[1])
            if p:
                with open(p, "w") as f:
                    f.write(t)
            else:
                text = t
        # listeners: also the host's address (the test's clients and the peer)
        text = text.replace("address = 127.0.0.1", f"address = 127.0.0.1, {self.host.addr}")
        # each host keeps its own homes: a userdb of the same accounts
        self.userdb_file = os.path.join(w, "userdb")
        with open(self.userdb_file, "w") as f:
            for u in self._users_for_db:
                home = os.path.join(self.homes, u.name)
                os.makedirs(home, exist_ok=True)
                os.chown(home, u.uid, u.gid)
                os.chmod(home, 0o700)
                f.write(f"{u.name}::{u.uid}:{u.gid}::{home}::\n")
        os.chmod(self.userdb_file, 0o644)
        own_homes = f"userdb {{\n  driver = passwd-file\n  args = {self.userdb_file}\n}}"
        text = text.replace("userdb {\n  driver = passwd\n}", own_homes)
        if self.rendered_authdb:
            text += "\n" + own_homes + "\n"
        # junk.conf.ext's mail_plugins line (its Junk/Trash autocreation is
        # left out: the tests create the folders), first: the protocol
        # blocks further down extend the global list
        text = "mail_plugins = $mail_plugins homemail_junk\n" + text
        text += "\n# --- rendered by ansible/render.yml for this host ---\n"
        for name in ("local.conf", "92-homemail-replication.conf"):
            p = os.path.join(self.rendered, name)
            if os.path.exists(p):
                text += self._plumb(open(p).read(), w) + "\n"
        return text

    def _render_auth(self, w):
        """The package's auth include (hmtest), then, for rendered_authdb,
        the host's rendered arguments and no homemail userdb."""
        inc = super()._render_auth(w)
        if not self.rendered_authdb:
            return inc
        args = open(os.path.join(self.rendered, "dovecot-authdb.conf")).read()
        line = re.search(r"(?m)^args = .*$", args).group(0)
        line = line.replace("users=/etc/homemail/users", f"users={w}/homemail-users")
        with open(os.path.join(w, "dovecot-authdb.conf"), "w") as f:
            f.write(f"{line} lockout={self.lockout_path}\n")
        ext = os.path.join(w, "share", "dovecot", "auth-homemail.conf.ext")
        text = open(ext).read()
        text, n = re.subn(r"(?ms)^userdb \{\n  driver = homemail\n.*?^\}\n", "", text)
        if n != 1:
            raise RuntimeError("auth-homemail.conf.ext: no homemail userdb block to replace")
        with open(ext, "w") as f:
            f.write(text)
        return inc

    @property
    def lockout_path(self):
        return os.path.join(self.w, "state", "lockout.db")

    def _plumb(self, text, w):
        """The rendered text with a private instance's paths and port."""
        text = text.replace("/run/dovecot/", f"{w}/run/")
        text = re.sub(r"(?m)^log_path = /\S+$", f"log_path = {w}/dovecot.log", text)
        text = text.replace("/etc/ssl/certs/ca-certificates.crt", self.pair_cert[0])
        text = re.sub(r"\bport = 12345\b", f"port = {self.doveadm_port}", text)
        text = text.replace("doveadm_port = 12345", f"doveadm_port = {self.doveadm_port}")
        return text

    def set_peer_port(self, port):
        """The peer's doveadm port (both ran 12345 in the inventory)."""
        conf = open(self.conf_path).read()
        conf = re.sub(r"(mail_replica = tcps:[^:\s]+:)\d+", rf"\g<1>{port}", conf)
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def start(self):
        # the built auth module over the installed directory (as
        # hmtest.Dovecot.start does)
        argv = hmtest.with_auth_modules(["dovecot", "-F", "-c", self.conf_path],
                                        self.w, self.auth_module_dir)
        self.proc = self.host.popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=open(os.path.join(self.w, "stdout"), "a"),
                                    stderr=subprocess.STDOUT, env=dict(os.environ, **self.env))

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}:\n" + self.log())
            if not os.path.exists(self.auth_master_socket):
                return False
            try:
                with socket.create_connection((self.host.addr, self.imaps_port), timeout=0.5):
                    return True
            except OSError:
                return False
        try:
            hmtest.wait_for(up, 30, what=f"dovecot of {self.host.name}")
        except (RuntimeError, TimeoutError) as ex:
            self.stop()
            raise RuntimeError(f"dovecot did not start: {ex}\n" + self.log()[-3000:]) from None
        return self

    def kill9(self):
        """kill -9 of every process of this instance (master and children)."""
        pids = subprocess.run(["pgrep", "-f", f"hmtest-{self.tag}"], capture_output=True,
                              text=True).stdout.split()
        if self.proc is not None:
            pids.append(str(self.proc.pid))
        for p in set(pids):
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        if self.proc is not None:
            self.proc.wait()
        self.proc = None
        # the children in the namespace (they do not carry the instance name)
        for p in subprocess.run(["ip", "netns", "pids", self.host.ns], capture_output=True,
                                text=True).stdout.split():
            try:
                exe = os.readlink(f"/proc/{p}/exe")
            except OSError:
                continue
            if "/dovecot" in exe or exe.endswith("/doveadm"):
                try:
                    os.kill(int(p), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def imap(self, user, password=None, tls=True):
        import imaplib
        c = imaplib.IMAP4_SSL(self.host.addr, self.imaps_port, ssl_context=_ctx(self.pair_cert[0]))
        c.login(user.name, password or user.password)
        return c

    def replicator(self, *args):
        return self.doveadm("replicator", *args)


def _ctx(cafile):
    import ssl
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    return ctx


class PairExim(hmtest.PackageExim):
    """PackageExim inside a world host, on port 25 as on a real MX (each
    namespace has its own ports): the backup MX's Exim reaches the mail
    hosts through Debian's dnslookup router and remote_smtp, port 25."""

    def _setup_dirs(self, host=None):
        super()._setup_dirs(host)
        if host is not None:
            self.smtp_port = 25


class PairHost:
    """One mail host of the pair: namespace, Dovecot, Exim."""

    def __init__(self, pair, key):
        self.pair, self.key = pair, key
        self.name = NAMES[key]
        self.fqdn = f"{self.name}.{DOMAIN}"
        self.host = pair.world.add_host(key, addr_index=INDEX[key])
        self.rendered = os.path.join(pair.rendered, self.name)
        self.dovecot = None
        self.exim = None

    def deliver_wrapper(self):
        """HOMEMAIL_DELIVER for this host's Exim: the built LDA with the
        host's rendered deliver.conf, plus the private instance's plumbing
        (its userdb socket, asked for the host's home: lookup_own_user)."""
        w = hmtest._workdir(f"pair-{self.key}-deliver")
        conf = os.path.join(w, "deliver.conf")
        text = open(os.path.join(self.rendered, "deliver.conf")).read()
        text = text.replace("/run/dovecot/", f"{self.dovecot.base_dir}/")
        with open(conf, "w") as f:
            f.write(text + f"auth_socket = {self.dovecot.auth_userdb_socket}\n"
                    "lookup_own_user = yes\n")
        os.chmod(conf, 0o644)
        self.deliver_conf = conf
        wrapper = os.path.join(w, "homemail-deliver")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec " + os.path.join(hmtest.BUILD, "homemail-deliver")
                    + f' --config {conf} "$@"\n')
        os.chmod(wrapper, 0o755)
        return wrapper

    def start(self, users, auth_backend=False):
        """auth_backend: the package's account database with the host's
        rendered arguments (PairDovecot rendered_authdb) instead of a
        passwd-file of the test users."""
        self.dovecot = PairDovecot(self.host, self.rendered, users, self.pair.cert,
                                   auth_failure_delay="0 secs", auth_backend=auth_backend,
                                   rendered_authdb=auth_backend)
        return self

    def kill9(self):
        """kill -9 of every process of the host (Dovecot, Exim, their
        children): a crash, nothing flushed or closed."""
        for _ in range(3):          # children forked while killing
            pids = subprocess.run(["ip", "netns", "pids", self.host.ns], capture_output=True,
                                  text=True).stdout.split()
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.1)
        for proc in (self.dovecot.proc, self.exim.proc):
            if proc is not None:
                proc.wait()
        self.dovecot.proc = None
        self.exim.proc = None

    def restart(self):
        """Bring the host back after kill9: Dovecot, Exim, one queue run
        (what Exim had accepted but not delivered)."""
        self.dovecot.start()
        self.exim.start()
        self.exim.queue_run()
        return self

    def start_exim(self):
        # SANITIZE=1: the package's Exim config loads homemail_scan.so for
        # its ${dlfunc}s even without local_scan: the runtimes go first
        self.exim = PairExim(dovecot=self.dovecot, host=self.host, local_scan=False,
                                       user_check=False, env=hmtest.sanitizer_env(),
                                       macros=f"HOMEMAIL_DELIVER == {self.deliver_wrapper()}")
        self.exim.start()
        return self


class BackupMX:
    """The inventory's mx-backup: its rendered Exim macros (exim role,
    backup mode) on the package's Exim, relaying by MX through Debian's own
    routers, and a Dovecot serving the package's account database (the
    homemail auth module) for the RCPT ACL's homemail_user_exists."""

    def __init__(self, pair):
        self.pair, self.key, self.name = pair, "backup", NAMES["backup"]
        self.host = pair.world.add_host("backup", addr_index=INDEX["backup"])
        self.rendered = os.path.join(pair.rendered, self.name)
        self.dovecot = self.exim = None

    def start(self, users):
        self.dovecot = PairDovecot(self.host, self.rendered, users, self.pair.cert,
                                   auth_backend=True, auth_failure_delay="0 secs").start()
        macros = "".join(ln + "\n" for ln in
                         open(os.path.join(self.rendered, "000_homemail_backupmx")).read()
                         .splitlines() if ln.strip() and not ln.startswith("#"))
        self.exim = PairExim(dovecot=self.dovecot, host=self.host, local_scan=False,
                             user_check=True, outbox=False, env=hmtest.sanitizer_env(),
                             probe=False,    # its postmaster probe meets SPF (probe.invalid)
                             macros=macros)
        self.exim.start()
        return self

    def close(self):
        for d in (self.exim, self.dovecot):
            if d:
                d.stop()


class Pair:
    """A world with DNS, hosts mail-a and mail-b replicating each other
    (backup=True: and the backup MX mx-backup, MX 50; auth_backend=True:
    the mail hosts authenticate with the package's account database and
    their rendered arguments, PairHost.start)."""

    def __init__(self, users, extra_vars=None, backup=False, auth_backend=False):
        self.world = hm_world.World()
        self.users = users
        self.cert = pair_cert()
        self.replicating = (extra_vars or {}).get("replication_peer") != ""
        self.rendered = render(self.world, extra_vars)
        self.a = PairHost(self, "a")
        self.b = PairHost(self, "b")
        self.backup = BackupMX(self) if backup else None
        recs = [f"{h.name} IN A {h.host.addr}" for h in (self.a, self.b)]
        recs += [f"@ IN MX 10 {h.name}" for h in (self.a, self.b)]
        if self.backup:
            recs += [f"{self.backup.name} IN A {self.backup.host.addr}",
                     f"@ IN MX 50 {self.backup.name}"]
        # the test's sender domain, with SPF for the world's bridge (Exim's
        # RCPT ACL checks SPF: docs/mailauth.md)
        self.world.start_dns({DOMAIN: recs,
                              SENDER_DOMAIN: ['@ IN TXT "v=spf1 ip4:198.18.0.0/15 -all"']})
        for h in (self.a, self.b):
            h.start(users, auth_backend=auth_backend)
        # each names the other's doveadm port (both are 12345 in the inventory)
        self.a.dovecot.set_peer_port(self.b.dovecot.doveadm_port)
        self.b.dovecot.set_peer_port(self.a.dovecot.doveadm_port)
        for h in (self.a, self.b):
            h.dovecot.start()
            h.start_exim()
        if self.backup:
            self.backup.start(users)
        # the accounts' mailboxes are made on one host and replicated before
        # either host uses them (docs/replication.md: an INBOX created on
        # both sides before the first sync has two GUIDs, and dsync then
        # reports a desync on every run)
        for u in users:
            self.a.dovecot.doveadm("mailbox", "status", "-u", u.name, "guid", "INBOX",
                                   check=True)
            if self.replicating:
                self.a.dovecot.replicator("replicate", u.name)
        if not self.replicating:
            return
        self.wait_synced()
        for u in users:
            ga, gb = (h.dovecot.doveadm("mailbox", "status", "-u", u.name, "guid", "INBOX",
                                        check=True).stdout.strip() for h in (self.a, self.b))
            if ga != gb:
                raise RuntimeError(f"INBOX of {u.name}: {ga} on A, {gb} on B after the first sync")

    def wait_synced(self, users=None, timeout=60):
        """Until each host's replicator reports a successful sync of every
        user and nothing pending.  A user whose last sync failed (the peer
        was down) waits 5 minutes for its retry in Dovecot; here it is asked
        for again at once (doveadm replicator replicate), as an admin would
        after bringing a host back."""
        users = users or self.users
        asked = {}

        def done():
            ok = True
            for h in (self.a, self.b):
                if h.dovecot.proc is None:
                    continue
                for u in users:
                    st = replicator_state(h.dovecot, u.name)
                    if st is None or st["failed"] or st["success"] == "-" \
                            or st["priority"] != "none":
                        ok = False
                        if st and st["failed"] and st["priority"] == "none" and \
                                time.monotonic() - asked.get((h.key, u.name), 0) > 2:
                            h.dovecot.replicator("replicate", u.name)
                            asked[(h.key, u.name)] = time.monotonic()
            return ok
        try:
            wait_until(done, timeout, "both replicators to report a successful sync", 0.2)
        except TimeoutError:
            raise TimeoutError("no successful sync on both hosts:\n" + self.diag(users)) from None

    def diag(self, users=None):
        """Replicator state and the last Dovecot errors of both hosts."""
        out = ""
        for h in (self.a, self.b):
            for u in users or self.users:
                out += f"{h.name} {u.name}: {replicator_state(h.dovecot, u.name)}\n"
            out += "\n".join(ln for ln in h.dovecot.log().splitlines()
                             if "Error" in ln or "Fatal" in ln or "Panic" in ln)[-2500:] + "\n"
        return out

    def close(self):
        if self.backup:
            self.backup.close()
        for h in (self.a, self.b):
            if h.exim:
                h.exim.stop()
            if h.dovecot:
                h.dovecot.stop()
        self.world.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def replicator_state(dovecot, user):
    """The user's line of `doveadm replicator status USER` as a dict, or None."""
    out = dovecot.replicator("status", user).stdout.splitlines()
    for ln in out[1:]:
        f = ln.split()
        if f and f[0] == user and len(f) >= 6:
            return {"priority": f[1], "fast": f[2], "full": f[3], "success": f[4],
                    "failed": f[5] == "y"}
    return None


def cut_link(host):
    """Take the host off the bridge (its eth0 down)."""
    subprocess.run(["ip", "-n", host.ns, "link", "set", "eth0", "down"], check=True)


def partition(h1, h2, on=True):
    """Cut (on) or heal the path between two hosts only: each namespace
    gets (or loses) an unreachable route to the other; the test still
    reaches both."""
    for src, dst in ((h1, h2), (h2, h1)):
        subprocess.run(["ip", "-n", src.ns, "route", "add" if on else "del", "unreachable",
                        f"{dst.addr}/32"], check=True)


def restore_link(host):
    subprocess.run(["ip", "-n", host.ns, "link", "set", "eth0", "up"], check=True)


def wait_until(pred, timeout, what, interval=0.1):
    """Poll pred until true; a TimeoutError names what did not happen."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


# ---------------------------------------------------------------------------
# traffic and observation

def message(i, tag, size=2000):
    """A test message with a unique Message-ID <tag-i@pair.test>."""
    body = "".join(f"line {j} of message {i} {tag}\n" for j in range(max(1, size // 30)))
    return (f"From: alice@pair.test\nTo: someone@{DOMAIN}\n"
            f"Subject: pair {tag} {i}\nMessage-ID: <{tag}-{i}@pair.test>\n"
            f"Date: Sat, 05 Dec 2026 08:00:00 +0000\n\n{body}")


def smtp_send(host, rcpt, msg, timeout=30, sender="alice@pair.test"):
    """One message over SMTP to a pair host's Exim; returns the time the
    server accepted it (after the 250 to the end of DATA)."""
    import smtplib
    with smtplib.SMTP(host.host.addr, host.exim.smtp_port, timeout=timeout) as s:
        s.sendmail(sender, [rcpt], msg)
        return time.monotonic()


class Watcher:
    """Polls a host's IMAP INBOX (by UID, only what is new) and records when
    each Message-ID was first seen."""

    def __init__(self, dovecot, user, folder="INBOX"):
        import threading
        self.d, self.user, self.folder = dovecot, user, folder
        self.seen = {}
        self.last_uid = 0
        self._stop = threading.Event()
        self.error = None
        self.reconnects = 0
        self.t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.t.start()
        return self

    def _run(self):
        import imaplib
        c = None
        while not self._stop.is_set():
            try:
                if c is None:
                    c = self.d.imap(self.user)
                c.select(self.folder, readonly=True)
                typ, data = c.uid("FETCH", f"{self.last_uid + 1}:*",
                                  "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                now = time.monotonic()
                for item in data or []:
                    if not isinstance(item, tuple):
                        continue
                    m = re.search(rb"UID (\d+)", item[0])
                    mid = re.search(rb"<([^>]+)>", item[1])
                    if m and int(m.group(1)) > self.last_uid:
                        self.last_uid = int(m.group(1))
                        if mid:
                            self.seen.setdefault(mid.group(1).decode(), now)
            except (imaplib.IMAP4.abort, OSError):
                # the first sync replaces the folder's UIDVALIDITY: Dovecot
                # ends the session ("state is inconsistent"); start over
                c, self.last_uid = None, 0
                self.reconnects += 1
            except Exception as ex:      # reported by stop()
                self.error = ex
                return
            self._stop.wait(0.05)
        if c is not None:
            try:
                c.logout()
            except Exception:
                pass

    def stop(self):
        self._stop.set()
        self.t.join(30)
        if self.error:
            raise self.error


def fetch_all(dovecot, user, folder="INBOX"):
    """{Message-ID: [full message bytes, ...]} of a folder over IMAP."""
    c = dovecot.imap(user)
    typ, cnt = c.select(folder, readonly=True)
    out = {}
    if typ != "OK":
        raise RuntimeError(f"SELECT {folder}: {cnt}")
    typ, data = c.fetch("1:*", "(BODY.PEEK[])") if int(cnt[0]) > 0 else ("OK", [])
    for item in data or []:
        if isinstance(item, tuple):
            mid = re.search(rb"(?im)^Message-ID:\s*<([^>]+)>", item[1])
            out.setdefault(mid.group(1).decode() if mid else "", []).append(item[1])
    c.logout()
    return out


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]
