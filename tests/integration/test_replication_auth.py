"""test_replication_auth.py — what the two replicating mail hosts do about
ManageSieve, lockout and the replicator's command socket (issue 18,
docs/replication.md), in hm_pair's world: both hosts in their own network
namespaces, running what ansible/render.yml renders for inventories/pair,
here with the package's account database (the built auth module) and each
host's rendered arguments (hm_pair.Pair auth_backend=True).

Guards:
  * a Sieve script uploaded and activated over ManageSieve on B reaches A
    with no other change (the replication plugin in `protocol sieve`;
    without it the script waits for the hourly full sync);
  * a guesser alternating hosts from one address gets no more attempts in
    total than one host allows: each host counts its share (the rendered
    max_failures), then the right password is refused on both, while
    another account logging in from the same address is not affected;
  * the replicator's command socket (replicator-doveadm) is open to doveadm's
    dsync only (its group), not to mail users, and dsync -U still reaches
    the peer's replicator through it.
"""
import base64
import grp
import os
import re
import socket
import stat
import subprocess
import threading
import time

import pytest

import hm_pair
import hmtest

WAIT = 60      # a bound on waiting for the peer, not a timing assertion
HMUSER = os.path.join(hmtest.BUILD, "homemail-user")


@pytest.fixture(scope="module")
def pair():
    users = {k: hmtest.make_user() for k in ("sieve", "victim", "other", "notify")}
    p = hm_pair.Pair(list(users.values()), auth_backend=True)
    p.u = users
    yield p
    p.close()


# ---------------------------------------------------------------------------
# ManageSieve (RFC 5804) over STARTTLS with AUTHENTICATE PLAIN, as a mail
# client (Roundcube, Thunderbird's add-on) uses it

class ManageSieve:
    def __init__(self, dovecot):
        self.sock = socket.create_connection((dovecot.host.addr, dovecot.sieve_port), timeout=30)
        self.f = self.sock.makefile("rb")
        caps = self._response()[1]
        assert any(ln.upper().startswith('"STARTTLS"') for ln in caps), caps
        ok, lines = self.command("STARTTLS")
        assert ok, lines
        self.sock = hm_pair._ctx(dovecot.pair_cert[0]).wrap_socket(
            self.sock, server_hostname=f"{dovecot.host.name}.{hmtest.MAIL_DOMAIN}")
        self.f = self.sock.makefile("rb")
        self.caps = self._response()[1]          # capabilities again after TLS

    def _response(self):
        """Lines up to OK/NO/BYE (literals inlined): (ok, lines)."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("managesieve: connection closed")
            line = line.rstrip(b"\r\n").decode("utf-8", "replace")
            m = re.search(r"\{(\d+)\+?\}$", line)
            if m:
                line = line[:m.start()] + self.f.read(int(m.group(1))).decode("utf-8", "replace")
                self.f.readline()
            lines.append(line)
            if re.match(r"(?i)(OK|NO|BYE)\b", line):
                return line.upper().startswith("OK"), lines

    def command(self, text, literal=None):
        data = text.encode()
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.sock.sendall(data + b"\r\n")
        return self._response()

    def authenticate(self, user, password):
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return self.command(f'AUTHENTICATE "PLAIN" "{tok}"')

    def logout(self):
        try:
            self.command("LOGOUT")
        except (ConnectionError, OSError):
            pass
        self.sock.close()


SIEVE = ('require ["fileinto"];\n'
         'if header :contains "subject" "from-managesieve" { fileinto "Sieved"; }\n')


def _sieve_list(dovecot, user):
    return dovecot.doveadm("sieve", "list", "-u", user.name).stdout


def test_managesieve_upload_reaches_peer(pair):
    """PUTSCRIPT + SETACTIVE over ManageSieve on B, nothing else: the script
    is on A, active, within the bound (the next full sync is an hour away).
    Fails without `notify replication` in protocol sieve (seen)."""
    u = pair.u["sieve"]
    assert "from-managesieve" not in _sieve_list(pair.a.dovecot, u)
    ms = ManageSieve(pair.b.dovecot)
    try:
        ok, lines = ms.authenticate(u.name, u.password)
        assert ok, lines
        ok, lines = ms.command('PUTSCRIPT "viams"', SIEVE.encode())
        assert ok, lines
        ok, lines = ms.command('SETACTIVE "viams"')
        assert ok, lines
        ok, lines = ms.command("LISTSCRIPTS")
        assert ok and '"viams" ACTIVE' in lines, lines
    finally:
        ms.logout()
    home_a = os.path.join(pair.a.dovecot.homes, u.name)

    def on_a():
        if not re.search(r"(?m)^viams\s+ACTIVE", _sieve_list(pair.a.dovecot, u)):
            return False
        try:
            with open(os.path.join(home_a, ".dovecot.sieve")) as f:
                return f.read() == SIEVE     # what homemail-deliver on A runs
        except OSError:
            return False
    try:
        hm_pair.wait_until(on_a, WAIT, "the ManageSieve upload active on A", 0.3)
    except TimeoutError:
        raise AssertionError("not on A: " + _sieve_list(pair.a.dovecot, u) + "\n"
                             + pair.diag([u])) from None


# ---------------------------------------------------------------------------
# Lockout across hosts

# one IMAP login (imaps) from the namespace this runs in; password on stdin
_LOGIN = r"""
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
ctx.check_hostname = False
c = imaplib.IMAP4_SSL(sys.argv[1], int(sys.argv[2]), ssl_context=ctx, timeout=60)
try:
    c.login(sys.argv[4], sys.stdin.read())
    print("OK")
    c.logout()
except imaplib.IMAP4.error as e:
    print("NO " + str(e))
"""


def imap_login(client, host, user, password):
    """An IMAP login from a world host (client) to a pair host: True/False."""
    d = host.dovecot
    r = client.run(["/usr/bin/python3", "-c", _LOGIN, host.host.addr, str(d.imaps_port),
                    d.pair_cert[0], user.name], input=password, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith(("OK", "NO")), r.stdout + r.stderr
    return r.stdout.startswith("OK")


def lockout_show(host, user):
    """(failures, locked) of the user's counter in the host's own state."""
    r = subprocess.run([HMUSER, "--lockout", host.dovecot.lockout_path, "show", user.name],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    fails = int(re.search(r"(?m)^failures: (\d+)$", r.stdout).group(1))
    locked = re.search(r"(?m)^locked: (\S+)$", r.stdout).group(1) == "yes"
    return fails, locked


def _budget():
    """The single-host limit (group_vars, or the dovecot role's default)."""
    gv = open(os.path.join(hm_pair.ANSIBLE, "inventories", "pair", "group_vars",
                           "all.yml")).read()
    m = re.search(r"(?m)^auth_max_failures:\s*(\d+)", gv)
    return int(m.group(1)) if m else 10


def test_lockout_shared_across_hosts(pair):
    """A guesser alternating hosts A and B from one address: after the
    single-host limit of wrong passwords in total (10), each host having
    counted only its share (5, the rendered max_failures), the right
    password is refused on both hosts, from that address and from another;
    another account from the guesser's address logs in on both.  Fails with
    the full budget rendered for each host (seen: the right password got in).
    The guesser repeats one wrong password per host: homemail counts every
    wrong password alike, and Dovecot's own per-address delay (anvil) then
    stays at 2 s instead of growing to 15 s per attempt."""
    victim, other = pair.u["victim"], pair.u["other"]
    guesser = pair.world.add_host("guesser", addr_index=30)
    bystander = pair.world.add_host("bystander", addr_index=31)
    limit = _budget()
    share = -(-limit // 2)
    counted = {"a": 0, "b": 0}

    def guess(h):
        # attempts refused unchecked (back-off) are not counted by homemail:
        # the guesser tries again, as a patient one would, until the host
        # has counted its share or locks the account
        tries = 0
        while counted[h.key] < share and tries < 4 * share:
            tries += 1
            before = lockout_show(h, victim)
            if before[1]:
                break
            assert not imap_login(guesser, h, victim, f"Wrong-{h.key}-guess")
            after = lockout_show(h, victim)
            if after[0] == before[0] + 1 or (after[1] and not before[1]):
                counted[h.key] += 1
            else:
                time.sleep(0.5)          # in back-off: wait, try again
    # both hosts at once, each attempt as soon as its Dovecot answers (each
    # login waits out Dovecot's 2 s delay: one host after the other would
    # double the run time; the order of attempts does not matter to the counts)
    _on_both(pair, guess)
    assert counted == {"a": share, "b": share}, counted
    assert counted["a"] + counted["b"] == limit

    def after_lock(h):
        # the guesser's address is not locked (its share < ip_max_failures):
        # another account logs in from it (first: a success resets Dovecot's
        # per-address delay), and nothing counted against that account
        assert imap_login(guesser, h, other, other.password), h.name
        assert lockout_show(h, other) == (0, False)
        # the victim is locked on this host: the right password is refused,
        # from the guesser's address and from another
        assert lockout_show(h, victim) == (0, True), (h.name, lockout_show(h, victim))
        assert not imap_login(guesser, h, victim, victim.password), h.name
        assert not imap_login(bystander, h, victim, victim.password), h.name
        assert imap_login(bystander, h, other, other.password), h.name
    _on_both(pair, after_lock)


def _on_both(pair, fn):
    """fn(host) for A and B at once; the first failure is raised here."""
    errors = []

    def run(h):
        try:
            fn(h)
        except BaseException as ex:
            errors.append(ex)
    threads = [threading.Thread(target=run, args=(h,)) for h in (pair.a, pair.b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------
# The replicator's command socket

def _replicator_status(dovecot, user):
    """The replicator's raw STATUS line of a user over replicator-doveadm
    (as root): {last_fast, last_full, failed, last_success} in epoch s."""
    path = os.path.join(dovecot.base_dir, "replicator-doveadm")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"VERSION\treplicator-doveadm-client\t1\t0\nSTATUS\t"
                  + user.name.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n\n"):       # the reply ends with an empty line
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    for ln in buf.decode().splitlines():
        f = ln.split("\t")
        if f[0] == user.name and len(f) >= 6:
            return {"fast": int(f[2]), "full": int(f[3]), "failed": f[4] == "1",
                    "success": int(f[5])}
    raise AssertionError(f"no STATUS line for {user.name}: {buf!r}")


_CONNECT = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n    s.connect(sys.argv[1]); print('connected')\n"
            "except OSError as e:\n    print(e.strerror)\n")


def test_replicator_socket_dsync_only(pair):
    """replicator-doveadm is 0660 root:homemail-dsync: a mail account cannot
    connect (it could queue or drop any user's syncs); doveadm's dsync on
    the peer (protocol doveadm mail_access_groups) still can: a sync A asks
    for reaches B's replicator as a NOTIFY (its last fast sync moves, its own
    last successful sync does not), and neither host logs a refused
    connection.  Fails with the group's mail_access_groups removed (seen:
    B's replicator kept its old time, "Permission denied" logged)."""
    u = pair.u["notify"]
    path = os.path.join(pair.b.dovecot.base_dir, "replicator-doveadm")
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_gid == grp.getgrnam(hm_pair.DSYNC_GROUP).gr_gid
    r = hmtest.as_user(u, ["/usr/bin/python3", "-c", _CONNECT, path],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "Permission denied", r.stdout + r.stderr
    before = _replicator_status(pair.b.dovecot, u)
    a_before = _replicator_status(pair.a.dovecot, u)
    # a new second on the clock, so a NOTIFY now gives a later time
    hm_pair.wait_until(lambda: int(time.time()) > max(before["fast"], a_before["success"]),
                       5, "the next second")
    pair.a.dovecot.replicator("replicate", u.name)
    hm_pair.wait_until(lambda: _replicator_status(pair.a.dovecot, u)["success"]
                       > a_before["success"], WAIT, "A's sync of the user")
    try:
        hm_pair.wait_until(lambda: _replicator_status(pair.b.dovecot, u)["fast"]
                           > before["fast"], WAIT, "the NOTIFY on B's replicator")
    except TimeoutError:
        raise AssertionError(f"B: {_replicator_status(pair.b.dovecot, u)} before {before}\n"
                             + pair.diag([u])) from None
    assert _replicator_status(pair.b.dovecot, u)["success"] == before["success"]
    for h in (pair.a, pair.b):
        bad = [ln for ln in h.dovecot.log().splitlines() if "replicator-doveadm" in ln]
        assert not bad, bad
