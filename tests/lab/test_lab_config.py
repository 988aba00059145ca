"""The lab's configuration as the daemons read it: validators pass, the key is
readable by the daemons only, homemail's pieces are wired in."""
import grp
import os
import stat
import subprocess

KEY = "/etc/homemail/tls/private/key.pem"


def _out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout.strip()


def test_validators_pass():
    _out("update-exim4.conf", "--check")
    _out("exim4", "-bV")
    _out("doveconf", "-n")
    _out("named-checkconf", "-z")


def test_key_readable_by_the_daemons_only():
    for path, mode in ((KEY, 0o640), (os.path.dirname(KEY), 0o750)):
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == mode, (path, oct(st.st_mode))
        assert st.st_uid == 0 and grp.getgrgid(st.st_gid).gr_name == "Debian-exim", path


def test_exim_uses_homemail():
    assert _out("exim4", "-bP", "local_scan_path").endswith("/usr/lib/exim4/local_scan/homemail_scan.so")
    assert _out("exim4", "-bP", "daemon_smtp_ports").split("=", 1)[1].split() == ["25", ":", "465", ":", "587"]
    assert "homemail-deliver" in _out("exim4", "-bP", "transport", "homemail")
    assert "mime" not in _out("exim4", "-bP", "acl_smtp_mime").split("=", 1)[1]


def test_dovecot_settings():
    assert _out("doveconf", "-h", "ssl") == "required"
    assert _out("doveconf", "-h", "ssl_min_protocol") == "TLSv1.2"
    assert _out("doveconf", "-h", "disable_plaintext_auth") == "yes"
    assert _out("doveconf", "-h", "mail_location") == "maildir:~/Maildir"
    plugins = _out("doveconf", "-h", "mail_plugins").split()
    assert "quota" in plugins and "homemail_junk" in plugins, plugins
    conf = _out("doveconf", "-n")
    assert "driver = homemail" in conf
    assert "sieve_extensions = fileinto envelope copy imap4flags vacation" in conf
