"""test_mailauth_out.py — outgoing mail authentication through real daemons
(docs/mailauth.md, "Outgoing"; issue 15).

A World (hm_world) with a bind9 serving home.com.bo (MX, A, SPF, both DKIM
keys, DMARC p=reject) and outside.test, the package's Exim configuration in
host "mail" with no capture router (Debian's dnslookup router and
remote_smtp deliver for real), and an outside Exim on port 25 of host "mx"
that logs SPF and each DKIM signature.  Proved here:
  * a message submitted with SMTP AUTH leaves with an RSA and an Ed25519
    signature that both verify at the destination (Exim's verifier, and
    Debian's python3-dkim), SPF passes for the mail host's address, and an
    independent DMARC checker (python3-authheaders) says pass, also on DKIM
    alone; the same message with its body altered in transit fails both;
  * a message From: a second local domain (its zone rendered from the
    playbook's extra-zone template) is signed d=<that domain> with its own
    keys, and verifies there;
  * mail from an unauthenticated client, and mail whose From: is another
    domain, is not signed;
  * a message from an outside sender forwarded by a user's .forward, by the
    user's Sieve redirect in homemail-deliver, and one submitted locally
    with sendmail -f SENDER, leave with an SRS0 sender of home.com.bo that
    passes SPF at the destination; a bounce to it comes back to the original
    sender; a forged SRS address is refused; our own senders are not
    rewritten;
  * with HOMEMAIL_SMARTHOST_HOSTS, mail goes through the smarthost (TLS verified,
    AUTH) signed as well.
"""
import os
import re
import smtplib
import time

import pytest

import hm_mailauth_out as M
import hm_world
import hmtest

DOMAIN = hmtest.MAIL_DOMAIN
DOMAIN2 = "ventas.test"         # a further local domain (issue 16), its own keys
RSA_SEL, ED_SEL = "r20261205", "e20261205"
RELAY_USER, RELAY_PW = "homemail-relay", "relay-Pw-7f3a"


class Site:
    """The world, the keys, the daemons (module-scoped: one set-up for all)."""

    def __init__(self):
        self.world = hm_world.World()
        self.mail = self.world.add_host("mail")
        self.mx = self.world.add_host("mx")
        self.relay = self.world.add_host("relay")
        self.w = hmtest._workdir("mailauth-out")
        keydir = os.path.join(self.w, "dkim")
        dkim = M.make_dkim_keys(keydir, DOMAIN, RSA_SEL, ED_SEL)
        dkim2 = M.make_dkim_keys(keydir, DOMAIN2, RSA_SEL, ED_SEL)
        domains_file = os.path.join(self.w, "domains")
        with open(domains_file, "w") as f:
            f.write(f"{DOMAIN}\n{DOMAIN2}\n")
        self.srs_secret = os.path.join(self.w, "srs.secret")
        with open(self.srs_secret, "w") as f:
            f.write(os.urandom(16).hex() + "\n")
        os.chown(self.srs_secret, 0, M.grp.getgrnam("Debian-exim").gr_gid)
        os.chmod(self.srs_secret, 0o640)
        self.world.start_dns({
            # the lab zone's records, from the playbook's own template
            DOMAIN: M.lab_zone_records(self.mail.addr, dkim, "reject", "postmaster@" + DOMAIN),
            DOMAIN2: M.lab_zone_records(self.mail.addr, dkim2, "reject", "postmaster@" + DOMAIN,
                                        extra_domain=DOMAIN2),
            "outside.test": ["@ IN MX 10 mx", f"mx IN A {self.mx.addr}",
                             f"relay IN A {self.relay.addr}",
                             f'@ IN TXT "v=spf1 ip4:{self.mx.addr} -all"',
                             '_dmarc IN TXT "v=DMARC1; p=reject"'],
            "far.test": ["@ IN MX 10 mx.outside.test.", '@ IN TXT "v=spf1 -all"'],
        })
        self.user = hmtest.make_user()
        self.dovecot = hmtest.PackageDovecot(users=[self.user], auth_backend=True).start()
        self.outside = M.OutsideExim(self.mx, ["outside.test", "far.test"]).start()
        self.relay_cert = M.make_cert("relay.outside.test")
        self.smarthost = M.OutsideExim(self.relay, ["outside.test"], port=587,
                                       auth=(RELAY_USER, RELAY_PW),
                                       cert=self.relay_cert).start()
        macros = (f"HOMEMAIL_DKIM_KEYDIR = {keydir}\n"
                  f"HOMEMAIL_DKIM_SELECTORS = {RSA_SEL} : {ED_SEL}\n"
                  f"HOMEMAIL_SRS_SECRET_FILE = {self.srs_secret}\n")
        # the RCPT ACL's user check runs (homemail_scan.so asks the auth
        # backend): an SRS address is no mailbox, the ACL must let it through
        self.exim = hmtest.PackageExim(dovecot=self.dovecot, local_scan=False, user_check=True,
                                       env=hmtest.sanitizer_env(), host=self.mail,
                                       outbox=False, macros=macros,
                                       domains_file=domains_file).start()
        self.macros = macros

    def close(self):
        for d in (self.exim, self.outside, self.smarthost, self.dovecot):
            d.stop()
        self.world.close()

    def submit(self, msg, sender=None, rcpt="bob@outside.test", port=None, exim=None):
        exim = exim or self.exim
        try:
            return hmtest.send(port or exim.smtp_port, sender or self.user.address, [rcpt], msg,
                               host=self.mail.addr, source=None, starttls=True,
                               login=(self.user.address, self.user.password))
        except (smtplib.SMTPException, OSError) as ex:
            time.sleep(0.5)
            raise AssertionError(f"submission refused: {ex!r}\n" + exim.log_tail(20)
                                 + "--- dovecot\n" + self.dovecot.log()[-2000:])

    def arrived(self, subject, where=None, timeout=30):
        """The message with this Subject once the destination has it."""
        where = where or self.outside
        found = []

        def there():
            found[:] = [m for m in where.outbox_messages() if subject.encode() in m]
            return bool(found)
        try:
            hmtest.wait_for(there, timeout, 0.2, f"{subject!r} at the destination")
        except TimeoutError:
            raise AssertionError(f"{subject!r} did not arrive\n--- sender\n"
                                 + self.exim.log_tail(30) + "--- destination\n"
                                 + where.log_tail(30))
        return found[0].replace(b"\r\n", b"\n")

    def dest_lines(self, tag, msg_id_of, where=None):
        """The destination's log lines with tag for the message whose
        Message-ID (the sender's) is msg_id_of."""
        where = where or self.outside
        log = where.mainlog()
        m = re.search(r"(\S{6}-\S{6}-\S{2}) <= .* id=" + re.escape(msg_id_of.strip("<>")), log)
        assert m, (msg_id_of, log[-3000:])
        qid = m.group(1)
        return [ln for ln in log.splitlines() if qid in ln and tag in ln]


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.close()


def _msg(subject, sender, to="bob@outside.test", body="Hola desde home.com.bo.\n"):
    return hmtest.make_message(subject=subject, sender=sender, to=to, body=body)


def _spf_of(site, sender, ip):
    return [ln for ln in site.outside.lines("hmtest-spf")
            if f"sender=<{sender}>" in ln and f"ip={ip}" in ln]


def test_signed_rsa_and_ed25519_spf_and_dmarc_pass(site):
    subject = "signed " + os.urandom(4).hex()
    msg = _msg(subject, site.user.address)
    site.submit(msg)
    got = site.arrived(subject)
    mid = M.header(got, "Message-ID")
    # the envelope sender is ours: not rewritten (no SRS)
    assert M.header(got, "Return-path") == f"<{site.user.address}>"
    # Exim at the destination: both signatures verified
    dk = site.dest_lines("hmtest-dkim", mid)
    assert any(f"s={RSA_SEL} a=rsa-sha256 status=pass" in ln for ln in dk), dk
    assert any(f"s={ED_SEL} a=ed25519-sha256 status=pass" in ln for ln in dk), dk
    assert all(f"d={DOMAIN}" in ln for ln in dk) and len(dk) == 2, dk
    # SPF at the destination: pass for the mail host's address
    assert any("result=pass" in ln for ln in _spf_of(site, site.user.address, site.mail.addr))
    # independent checkers (Debian's python3-dkim, -spf, -authheaders)
    v = M.check_independently(site.mx, M.strip_trace(got), site.mail.addr,
                              site.user.address, "mail.home.com.bo")
    algos = sorted((s["a"], s["s"], s["pass"]) for s in v["dkim"])
    assert algos == [("ed25519-sha256", ED_SEL, True), ("rsa-sha256", RSA_SEL, True)], v
    assert v["spf"] == "pass", v
    assert "dmarc=pass" in v["ar"] and "dkim=pass" in v["ar"] and "spf=pass" in v["ar"], v
    assert "dmarc=pass" in v["ar_dkim_only"], v         # aligned DKIM alone suffices

    # The same message with its body altered in transit: both signatures fail.
    tampered = M.strip_trace(got).replace(b"Hola desde", b"Hola DESDE")
    assert tampered != M.strip_trace(got)
    r = site.mail.run([M.SYS_PY, "-c",
                       "import smtplib,sys; s=smtplib.SMTP(sys.argv[1],25,timeout=30);"
                       "s.ehlo('mail.home.com.bo'); s.mail(sys.argv[2]);"
                       "s.rcpt('bob@outside.test'); print(s.data(sys.stdin.buffer.read())[1].decode());"
                       "s.quit()",
                       site.mx.addr, site.user.address],
                      input=tampered.replace(b"\n", b"\r\n"), text=False)
    assert r.returncode == 0, r.stderr
    qid = r.stdout.decode().split("id=")[1].split()[0]
    dk2 = [ln for ln in site.outside.lines("hmtest-dkim") if qid in ln]
    assert len(dk2) == 2 and all("status=fail" in ln for ln in dk2), dk2
    got2 = [m for m in site.outside.outbox_messages() if qid.encode() in m]
    assert len(got2) == 1 and b"Hola DESDE" in got2[0]
    v2 = M.check_independently(site.mx, M.strip_trace(got2[0].replace(b"\r\n", b"\n")),
                               site.mail.addr, site.user.address, "mail.home.com.bo")
    assert [s["pass"] for s in v2["dkim"]] == [False, False], v2
    assert "dmarc=fail" in v2["ar_dkim_only"], v2


def test_second_domain_signed_with_its_own_key(site):
    """From: a further local domain: signed d=DOMAIN2 with that domain's keys
    (published by the playbook's extra-zone template), SPF and DMARC pass."""
    subject = "second-domain " + os.urandom(4).hex()
    sender = "ventas@" + DOMAIN2
    site.submit(_msg(subject, sender, body="Hola desde ventas.\n"), sender=sender)
    got = site.arrived(subject)
    dk = site.dest_lines("hmtest-dkim", M.header(got, "Message-ID"))
    assert len(dk) == 2 and all(f"d={DOMAIN2} " in ln and "status=pass" in ln for ln in dk), dk
    assert any(f"s={RSA_SEL} a=rsa-sha256" in ln for ln in dk), dk
    assert any(f"s={ED_SEL} a=ed25519-sha256" in ln for ln in dk), dk
    assert any("result=pass" in ln for ln in _spf_of(site, sender, site.mail.addr))
    v = M.check_independently(site.mx, M.strip_trace(got), site.mail.addr, sender,
                              "mail.home.com.bo")
    assert [(s["d"], s["pass"]) for s in v["dkim"]] == [(DOMAIN2, True)] * 2, v
    assert "dmarc=pass" in v["ar_dkim_only"], v


def test_not_signed_without_auth_or_for_other_from_domains(site):
    # authenticated, but From: is another domain: no signature
    subject = "foreign-from " + os.urandom(4).hex()
    site.submit(_msg(subject, "someone@outside.test"))
    got = site.arrived(subject)
    assert M.header(got, "DKIM-Signature") is None, got[:2000]
    # From: ours, but no AUTH (a local program over 127.0.0.1, relay_from_hosts)
    subject = "unauth " + os.urandom(4).hex()
    r = site.mail.run(["swaks", "--server", "127.0.0.1", "--port", str(site.exim.smtp_port),
                       "--from", site.user.address, "--to", "bob@outside.test",
                       "--header", f"Subject: {subject}", "--header", f"From: {site.user.address}",
                       "--body", "x"], text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    got = site.arrived(subject)
    assert M.header(got, "DKIM-Signature") is None, got[:2000]


def _srs_checks(site, got, original):
    rp = M.header(got, "Return-path").strip("<>")
    assert re.fullmatch(r"SRS0=[^=]+=[^=]+=outside\.test=alice@home\.com\.bo", rp, re.I), rp
    assert rp.split("@")[1] == DOMAIN
    spf = _spf_of(site, rp, site.mail.addr)
    assert spf and all("result=pass" in ln for ln in spf), site.outside.lines("hmtest-spf")[-5:]
    return rp


def test_forward_leaves_with_srs_and_bounce_comes_back(site):
    u = site.user
    fwd = os.path.join(u.home, ".forward")
    with open(fwd, "w") as f:
        f.write("carol@far.test\n")
    os.chown(fwd, u.uid, u.gid)
    os.chmod(fwd, 0o644)
    try:
        subject = "forward " + os.urandom(4).hex()
        msg = _msg(subject, "alice@outside.test", to=u.address)
        # from the outside sender's own host (its SPF passes there)
        r = site.mx.run(["swaks", "--server", site.mail.addr, "--port", str(site.exim.smtp_port),
                         "--from", "alice@outside.test", "--to", u.address,
                         "--data", "-"], input=msg)
        assert r.returncode == 0, r.stdout + r.stderr
        got = site.arrived(subject)
        rp = _srs_checks(site, got, "alice@outside.test")
    finally:
        os.unlink(fwd)
    # without SRS the destination would have refused it: alice's SPF there
    out = site.mx.run([M.SYS_PY, "-c", "import spf,sys;print(spf.check2(*sys.argv[1:4])[0])",
                       site.mail.addr, "alice@outside.test", "mail.home.com.bo"], text=True)
    assert out.stdout.strip() == "fail", out
    # a bounce to the SRS address goes back to alice
    bsub = "bounce " + os.urandom(4).hex()
    bounce = _msg(bsub, "MAILER-DAEMON@far.test", to=rp)
    r = site.mx.run(["swaks", "--server", site.mail.addr, "--port", str(site.exim.smtp_port),
                     "--from", "<>", "--to", rp, "--data", "-"], input=bounce)
    assert r.returncode == 0, r.stdout + r.stderr
    back = site.arrived(bsub)
    assert M.header(back, "Return-path") == "<>"
    assert "alice@outside.test" in (M.header(back, "Envelope-to") or ""), back[:1500]
    # a forged SRS address (hash changed) is refused at RCPT
    forged = re.sub(r"^SRS0=[^=]+=", "SRS0=AAAA=", rp)
    r = site.mx.run(["swaks", "--server", site.mail.addr, "--port", str(site.exim.smtp_port),
                     "--from", "<>", "--to", forged, "--quit-after", "RCPT"], text=True)
    assert "\n<** 550" in r.stdout, r.stdout


def test_local_sendmail_submission_is_srs_rewritten(site):
    """What homemail-deliver's Sieve redirect runs: sendmail -oi -f SENDER --
    TARGET, a local submission of the recipient (-oMai names the user: Exim
    keeps no privilege for a private -C configuration run by another user,
    so root submits on the user's behalf; Debian lets any user set -f)."""
    subject = "redirect " + os.urandom(4).hex()
    msg = _msg(subject, "alice@outside.test", to=site.user.address)
    r = site.mail.run(["exim4", "-C", site.exim.conf_path, "-oMai", site.user.name,
                       "-oi", "-f", "alice@outside.test", "--", "carol@far.test"],
                      input=msg.replace(b"\r\n", b"\n"))
    assert r.returncode == 0, r.stderr
    got = site.arrived(subject)
    _srs_checks(site, got, "alice@outside.test")
    assert M.header(got, "DKIM-Signature") is None     # From: is not ours


def test_sieve_redirect_by_homemail_deliver_is_srs_rewritten(site):
    """homemail-deliver itself, as the user, runs the user's Sieve
    `redirect`; its sendmail call (-f the original sender) reaches the
    package's Exim (sendmail_stand_in), which sends it on with an SRS
    sender that passes SPF at the destination."""
    u = site.user
    script = os.path.join(u.home, ".dovecot.sieve")
    with open(script, "w") as f:
        f.write('redirect "carol@far.test";\n')
    os.chown(script, u.uid, u.gid)
    try:
        subject = "sieve " + os.urandom(4).hex()
        msg = _msg(subject, "alice@outside.test", to=u.address)
        env = {"PATH": "/usr/bin:/bin", "HOME": u.home, "USER": u.name, "RECIPIENT": u.address,
               "HOMEMAIL_SENDMAIL": M.sendmail_stand_in(site.exim.smtp_port)}
        r = site.mail.run(["setpriv", f"--reuid={u.uid}", f"--regid={u.gid}", "--init-groups",
                           "--", "env", "-i"] + [f"{k}={v}" for k, v in env.items()]
                          + [os.path.join(hmtest.BUILD, "homemail-deliver"),
                             "-f", "alice@outside.test"], input=msg, timeout=60)
        assert r.returncode == 0, r.stderr
        got = site.arrived(subject)
    finally:
        os.unlink(script)
    assert M.header(got, "X-Sieve-Redirected-From"), got[:1500]   # homemail-deliver's marker
    _srs_checks(site, got, "alice@outside.test")


def test_smarthost_signs_too(site):
    ca = os.path.join(site.w, "relay-ca.pem")
    with open(site.relay_cert[0]) as f, open(ca, "w") as g:
        g.write(f.read())
    os.chmod(ca, 0o644)
    macros = site.macros + ("HOMEMAIL_SMARTHOST_HOSTS = relay.outside.test::587\n"
                            f"HOMEMAIL_SMARTHOST_TLS_CA = {ca}\n"
                            "HOMEMAIL_SMARTHOST_AUTH = yes\n")
    e = hmtest.PackageExim(dovecot=site.dovecot, local_scan=False, user_check=True,
                           env=hmtest.sanitizer_env(), host=site.mail, outbox=False,
                           macros=macros)
    with open(os.path.join(e.w, "confdir", "passwd.client"), "w") as f:
        f.write(f"relay.outside.test:{RELAY_USER}:{RELAY_PW}\n")
    os.chown(os.path.join(e.w, "confdir", "passwd.client"), 0,
             M.grp.getgrnam("Debian-exim").gr_gid)
    os.chmod(os.path.join(e.w, "confdir", "passwd.client"), 0o640)
    e.start()
    try:
        subject = "smarthost " + os.urandom(4).hex()
        site.submit(_msg(subject, site.user.address), exim=e)
        got = site.arrived(subject, where=site.smarthost)
        dk = site.dest_lines("hmtest-dkim", M.header(got, "Message-ID"), where=site.smarthost)
        assert len(dk) == 2 and all("status=pass" in ln for ln in dk), dk
        log = site.smarthost.mainlog()
        assert re.search(r"<= \S+ H=\S+ \[" + re.escape(site.mail.addr) + r"\].* X=TLS\S+ .*"
                         r"A=hmtest_plain:" + RELAY_USER, log), log[-2000:]
        assert not [m for m in site.outside.outbox_messages() if subject.encode() in m]
    finally:
        e.stop()
