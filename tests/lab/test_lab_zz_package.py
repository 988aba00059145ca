"""The homemail package: dependencies, files at design.md's paths, and
`apt remove homemail` leaving a working mail server (stock pieces take over),
then reinstalled. Runs last (it restarts the daemons)."""
import os
import socket
import subprocess
import time

import labconf as L

PIECES = {
    "homemail-deliver": "/usr/lib/homemail/homemail-deliver",
    "homemail-sieve": "/usr/bin/homemail-sieve",
    "homemail-scan": "/usr/bin/homemail-scan",
    "homemail_scan.so": "/usr/lib/exim4/local_scan/homemail_scan.so",
    "libauthdb_homemail.so": "/usr/lib/dovecot/modules/auth/libauthdb_homemail.so",
    "lib90_homemail_junk_plugin.so": "/usr/lib/dovecot/modules/lib90_homemail_junk_plugin.so",
    "homemail-user": "/usr/sbin/homemail-user",
    "homemail-passwd": "/usr/lib/homemail/homemail-passwd",
}
STAMP = "/var/lib/homemail/lab-package.sha256"


def _run(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=check)


def _restart_daemons():
    # The daemons must not inherit our pipes (run() would wait for them to close).
    for svc in ("dovecot", "exim4"):
        subprocess.run(["/etc/init.d/" + svc, "restart"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       start_new_session=True, timeout=120, check=True)
    # the init scripts return before the listeners are up: wait for them
    # (587 refused the next submission once, right after "daemon started")
    for port in (25, 587, 993):
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection((L.HOST, port), timeout=2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)


def _lab_deb():
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    debs = sorted(f for f in os.listdir(os.path.join(top, "build", "deb")) if f.endswith(".deb"))
    assert debs, "no package in build/deb (make lab builds it)"
    return os.path.join(top, "build", "deb", debs[-1])


def _assert_mail_flows(user="roberto"):
    rcpt = user + "@" + L.DOMAIN
    subject, msg = L.make_message(rcpt)
    L.submit("maria" if user == "roberto" else "roberto", [rcpt], msg)
    L.assert_intact(L.imap_find(user, subject, timeout=60), msg)


def test_depends_on_the_installed_abis():
    deps = _run("dpkg-query", "-W", "-f=${Depends}", "homemail").stdout
    provides = _run("dpkg-query", "-W", "-f=${Provides}", "dovecot-core").stdout
    abi = [p.strip() for p in provides.split(",") if p.strip().startswith("dovecot-abi-")]
    assert abi and abi[0] in deps, (abi, deps)
    assert "exim4-localscanapi-6.0" in deps and "dovecot-sieve" in deps, deps


def test_pieces_installed_at_design_paths():
    files = set(_run("dpkg-query", "-L", "homemail").stdout.split())
    built = [p for p in PIECES if os.path.exists(os.path.join(L.ARTIFACTS, "..", p))]
    for piece in built:
        assert PIECES[piece] in files, piece + " built but not packaged"
    assert "/etc/exim4/conf.d/transport/30_homemail" in files
    assert "/etc/dovecot/conf.d/90-homemail.conf" in files


def test_apt_remove_leaves_a_working_server_then_reinstall():
    deb = _lab_deb()
    try:
        _run("apt-get", "remove", "-y", "-q", "homemail")
        for path in PIECES.values():
            assert not os.path.exists(path), path + " left behind"
        assert not os.path.exists("/usr/share/homemail/exim4/local_scan.conf")
        _run("update-exim4.conf", "--check")
        _run("exim4", "-bV")
        _run("doveconf", "-n")
        _restart_daemons()
        _assert_mail_flows()                  # dovecot-lda, stock auth
    finally:
        _run("dpkg", "-i", "--force-confdef", "--force-confnew", deb)
        _run("update-exim4.conf")
        _restart_daemons()
    _assert_mail_flows()                      # homemail pieces again
    assert os.path.exists(STAMP)
