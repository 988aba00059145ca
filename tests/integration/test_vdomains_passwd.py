"""Users change their own password (issue 16): homemail-passwd, the helper
behind Roundcube's password form, against a private Dovecot running the
package's auth module (hm_vdomains.VWorld, no Exim needed).

Each test names what it guards: a wrong current password is refused and
counted in the lockout state; a weak new password is refused and nothing
is written; a change makes the new password work over IMAP and the old one
fail; shell metacharacters in any input are plain bytes; an expired
password (`homemail-user passwd --expire`) refuses IMAP logins from outside
with a clear reason, still lets the webmail on the host log in, and a change
clears it; the setuid-facing options are root's only; and Roundcube's side:
the password plugin's driver (conf/roundcube/homemail.php) run inside
Debian's Roundcube maps each answer to the plugin's result codes.
"""
import imaplib
import json
import os
import socket
import subprocess

import pytest

import hmtest
from hm_vdomains import OUTSIDE, VWorld

HELPER = os.path.join(hmtest.BUILD, "homemail-passwd")
STRONG = "Nuevo-Clave-2026"


@pytest.fixture(scope="module")
def world():
    w = VWorld()
    w.conf = os.path.join(w.d.w, "passwd.conf")
    with open(w.conf, "w") as f:
        f.write(f"# test\nusers = {w.users_path}\nauth_socket = {w.d.auth_client_socket}\n"
                "scheme = sha512-crypt\nmin_length = 10\nmin_classes = 3\n")
    os.chmod(w.conf, 0o600)
    w.d.start()
    yield w
    w.d.stop()


def passwd(w, *lines, args=(), rip="192.0.2.77", check=False):
    argv = [HELPER, "--config", w.conf] + (["--check"] if check else []) + list(args)
    if rip:
        argv += ["--rip", rip]
    return subprocess.run(argv, input="".join(x + "\n" for x in lines),
                          capture_output=True, text=True, timeout=60)


def users_text(w):
    with open(w.users_path) as f:
        return f.read()


def lockout_failures(w, address):
    r = subprocess.run([os.path.join(hmtest.BUILD, "homemail-user"), "--users", w.users_path,
                        "--lockout", os.path.join(w.d.w, "state", "lockout.db"), "show", address],
                       capture_output=True, text=True)
    for ln in r.stdout.splitlines():
        if ln.startswith("failures: "):
            return int(ln.split()[1])
    raise AssertionError(r.stdout + r.stderr)


def imap_ok(w, user, password):
    try:
        w.d.imap(user, password).logout()
        return True
    except imaplib.IMAP4.error:
        return False


class OutsideIMAP(imaplib.IMAP4):
    """IMAP from another loopback address (not this host's own): STARTTLS + LOGIN."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(OUTSIDE, 0))


def outside_login(w, user, password):
    c = OutsideIMAP("127.0.0.1", w.d.imap_port, timeout=30)
    c.starttls(ssl_context=hmtest.client_tls_context())
    try:
        c.login(user, password)
    except imaplib.IMAP4.error as ex:
        return str(ex)
    c.logout()
    return "OK"


def test_wrong_current_password_refused_and_counted(world):
    acct = world.add_virtual("ana@ventas.com.bo")
    before, n0 = users_text(world), lockout_failures(world, acct.address)
    r = passwd(world, acct.address, "not-the-password", STRONG)
    assert r.returncode == 77, (r.returncode, r.stdout, r.stderr)
    assert "current password is wrong" in r.stdout
    assert users_text(world) == before
    assert lockout_failures(world, acct.address) == n0 + 1
    assert imap_ok(world, acct.address, acct.password)


def test_weak_new_password_refused(world):
    acct = world.add_virtual("beto@ventas.com.bo")
    before = users_text(world)
    for weak, why in (("Ab1-short", "at least 10"), ("alllowercaseletters", "mix at least 3"),
                      ("Beto-1234-xyz", "account name"), (acct.password, None)):
        r = passwd(world, acct.address, acct.password, weak)
        assert r.returncode == 65, (weak, r.returncode, r.stdout, r.stderr)
        assert why is None or why in r.stdout, (weak, r.stdout)
    assert users_text(world) == before
    assert imap_ok(world, acct.address, acct.password)


def test_change_then_new_works_old_fails(world):
    acct = world.add_virtual("caro@home.com.bo")
    r = passwd(world, acct.address, acct.password, STRONG)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.strip() == "password changed"
    line = [ln for ln in users_text(world).splitlines() if ln.startswith(acct.address + ":")]
    assert line and line[0].split(":")[1].startswith("$6$"), line   # the configured scheme
    assert imap_ok(world, acct.address, STRONG)
    assert not imap_ok(world, acct.address, acct.password)
    assert oct(os.stat(world.users_path).st_mode & 0o777) == "0o600"


def test_shell_metacharacters_are_plain_bytes(world, tmp_path):
    acct = world.add_virtual("dani@home.com.bo")
    marker = tmp_path / "pwned"
    hostile = f"$(touch {marker});`touch {marker}`|&;<>'\"\\ *?Z9"
    r = passwd(world, acct.address, acct.password, hostile)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert imap_ok(world, acct.address, hostile)
    r = passwd(world, f"dani@home.com.bo;touch {marker}", hostile, STRONG)
    assert r.returncode == 77, (r.returncode, r.stdout)
    r = passwd(world, acct.address, hostile, STRONG, rip=f"1.2.3.4;touch {marker}")
    assert r.returncode == 64, (r.returncode, r.stdout)
    assert not marker.exists()
    assert imap_ok(world, acct.address, hostile)


def test_expired_password_forces_a_change(world):
    acct = world.add_virtual("eva@ventas.com.bo")
    r = subprocess.run([os.path.join(hmtest.BUILD, "homemail-user"), "--users",
                        world.users_path, "passwd", "--expire", acct.address],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ":expired" in [ln for ln in users_text(world).splitlines()
                          if ln.startswith(acct.address + ":")][0]
    # IMAP from outside: refused, and the client is told why
    why = outside_login(world, acct.address, acct.password)
    assert "Password expired" in why, why
    # SMTP AUTH (Exim's dovecot authenticator, the same auth-client protocol)
    r = world.d.doveadm("auth", "test", "-x", "service=smtp", "-x", "rip=" + OUTSIDE,
                        acct.address, acct.password)
    assert r.returncode != 0 and "auth failed" in r.stdout, (r.stdout, r.stderr)
    assert "login refused: password expired" in world.d.log()
    # the webmail (a client on the host's own address) still gets in, and
    # learns from the helper that the password must change
    assert imap_ok(world, acct.address, acct.password)
    r = passwd(world, acct.address, acct.password, check=True)
    assert (r.returncode, r.stdout.strip()) == (0, "expired"), (r.returncode, r.stdout)
    r = passwd(world, acct.address, acct.password, STRONG)
    assert r.returncode == 0, r.stdout
    assert ":expired" not in [ln for ln in users_text(world).splitlines()
                              if ln.startswith(acct.address + ":")][0]
    assert outside_login(world, acct.address, STRONG) == "OK"
    r = passwd(world, acct.address, STRONG, check=True)
    assert (r.returncode, r.stdout.strip()) == (0, "current"), r.stdout
    # a password the admin sets clears the flag too
    assert subprocess.run([os.path.join(hmtest.BUILD, "homemail-user"), "--users",
                           world.users_path, "passwd", "--expire", acct.address]).returncode == 0
    r = subprocess.run([os.path.join(hmtest.BUILD, "homemail-user"), "--users", world.users_path,
                        "passwd", acct.address, "--password-stdin"], input=STRONG + "\n",
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert outside_login(world, acct.address, STRONG) == "OK"


def test_caller_cannot_choose_files(world):
    """Not root: --config is refused; without setuid the helper does nothing."""
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    r = subprocess.run(nobody + [HELPER, "--config", world.conf], input="a\nb\nc\n",
                       capture_output=True, text=True)
    assert r.returncode == 64 and "root only" in r.stdout, (r.returncode, r.stdout)
    r = subprocess.run(nobody + [HELPER], input="a\nb\nc\n", capture_output=True, text=True)
    assert r.returncode == 77, (r.returncode, r.stdout)


def test_roundcube_driver_maps_the_answers(world, tmp_path):
    """conf/roundcube/homemail.php inside Roundcube (php-cli, roundcube-core):
    the plugin's codes and messages for a wrong current password, a weak new
    one and a change; the --check call of the homemail_pwexpire plugin."""
    acct = world.add_virtual("fede@home.com.bo")
    helper = tmp_path / "helper"        # the test's settings (root may pass --config)
    helper.write_text(f"#!/bin/sh\nexec {HELPER} --config {world.conf} \"$@\"\n")
    helper.chmod(0o755)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roundcube_driver.php")

    def php(*args):
        r = subprocess.run(["php", script, str(helper), *args], capture_output=True, text=True,
                           timeout=60)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        assert lines, (r.returncode, r.stdout, r.stderr)
        return json.loads(lines[-1])

    # password.php: PASSWORD_ERROR 2, PASSWORD_CONSTRAINT_VIOLATION 5, SUCCESS 0
    assert php("save", acct.address, "wrong-one", STRONG)["result"] == {
        "code": 2, "message": "the current password is wrong"}
    weak = php("save", acct.address, acct.password, "weakweakweak")["result"]
    assert weak["code"] == 5 and "mix at least 3" in weak["message"], weak
    assert php("save", acct.address, acct.password, "x\ny")["result"]["code"] == 5
    assert php("save", acct.address, acct.password, STRONG + "$(id)")["result"] == 0
    assert imap_ok(world, acct.address, STRONG + "$(id)")
    assert not imap_ok(world, acct.address, acct.password)
    assert php("check", acct.address, STRONG + "$(id)") == {"code": 0, "line": "current"}
