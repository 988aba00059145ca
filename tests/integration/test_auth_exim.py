"""test_auth_exim.py — Exim's recipient check answered by the homemail userdb.

Exim asks Dovecot's userdb (auth-master protocol) through the scan piece's
${dlfunc ... homemail_user_exists}; behind the socket is our module, so
virtual addresses, system users reached through `domains=` and the
refusals (unknown names, accounts outside the group, uid-0 lines) come
from one account database.  Guards against: a virtual address refused at
RCPT, a disabled account whose mail bounces, root reachable as a mailbox.
"""
import os
import smtplib

import pytest

import hmtest
from test_auth_module import Env, san_env

SCAN_SO = os.path.join(hmtest.BUILD, "homemail_scan.so")
LISTENER = """
service auth {
  unix_listener auth-exim-master {
    mode = 0600
    user = Debian-exim
  }
}
"""


def rcpt_codes(port, rcpts, source="127.0.0.2"):
    """{recipient: SMTP reply code to its RCPT TO} in one transaction from
    source (test_scan_exim.py shares it)."""
    codes = {}
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as s:
        s.ehlo("client.example")
        s.mail("a@example.org")
        for r in rcpts:
            codes[r] = s.rcpt(r)[0]
        s.rset()
    return codes


def test_exim_recipient_check_through_module():
    assert os.path.exists(SCAN_SO), "build/homemail_scan.so is not built"
    u = hmtest.make_user()
    env = Env([u], virtual=[("vx@home.com.bo", "Vx-pw", None)], extra=LISTENER)
    # a disabled virtual account still receives mail
    env.write_users(env.users_text() + env.vline("off@home.com.bo", "*", state="disabled") + "\n"
                    + "rootish@home.com.bo:*:0:0:/root::\n")
    env.start()
    sock = os.path.join(os.path.dirname(env.d.auth_master_socket), "auth-exim-master")
    try:
        xenv, _ = san_env(env.w)     # homemail_scan.so may carry ASan too
        # a generous lookup timeout for the -be checks (a loaded CI machine),
        # and auth-workers already running before Exim asks
        scan_conf = os.path.join(env.w, "scan.conf")
        with open(scan_conf, "w") as f:
            f.write("auth_timeout = 15000\n")
        os.chmod(scan_conf, 0o644)
        xenv = dict(xenv or {}, HOMEMAIL_SCAN_CONF=scan_conf)
        assert env.d.doveadm("user", "vx@home.com.bo").returncode == 0
        e = hmtest.Exim(None, transport_command="/bin/true", env=xenv)

        def ask(who):
            return e.exim("-be", f"${{dlfunc{{{SCAN_SO}}}{{homemail_user_exists}}{{{who}}}"
                                 f"{{{env.d.auth_master_socket}}}}}").stdout.strip()
        assert ask("vx@home.com.bo") == "yes"
        assert ask("VX@Home.Com.Bo") == "yes"
        assert ask(u.address) == "yes"                    # system user via domains=
        assert ask(u.name) == "yes"
        assert ask("off@home.com.bo") == "yes"
        assert ask("nosuch@home.com.bo") == "no"
        assert ask("root@home.com.bo") == "no"             # uid 0: never a mailbox
        assert ask("rootish@home.com.bo") == "no"          # uid-0 line is malformed
        assert ask("daemon") == "no"
        acl = ("  deny    domains = +local_domains\n"
               f"          !condition = ${{dlfunc{{{SCAN_SO}}}{{homemail_user_exists}}"
               f"{{$local_part@$domain}}{{{sock}}}}}\n"
               "          message = unknown user\n")
        e2 = hmtest.Exim(None, transport_command="/bin/true", rcpt_acl=acl, env=xenv)
        with e2:
            codes = rcpt_codes(e2.smtp_port, ["vx@home.com.bo", u.address, "nosuch@home.com.bo",
                                              "root@home.com.bo"])
            assert codes == {"vx@home.com.bo": 250, u.address: 250,
                             "nosuch@home.com.bo": 550, "root@home.com.bo": 550}, \
                (codes, e2.mainlog(), env.d.log()[-2000:])
    finally:
        env.stop()
