"""hm_mailauth.py — a test world for incoming sender authentication (SPF,
DKIM, DMARC: docs/mailauth.md), shared by test_mailauth_in.py and
bench/mailauth/run.

MailauthWorld builds, with hm_world and hmtest:
  * a bind9 serving test zones: sender.test (SPF passing for the whole
    world bridge, so the envelope sender is never what refuses a message),
    spffail.test (SPF -all), reject.test / quarantine.test / none.test
    (DMARC p=reject / p=quarantine / p=none; reject.test also publishes a
    DKIM key, selector "sel"), and slow.test (for DNS failures);
  * a private Dovecot (the package's snippet) with one test user, and the
    package's Exim configuration inside a namespace host ("mx"), with
    homemail_scan.so and a scan.conf of the test's own;
  * send(): SMTP from the root namespace (198.18.N.1, an outside address),
    step by step so a test can act between RCPT and DATA.
DKIM signatures are made with Debian's python3-dkim (dkimpy) and a key
generated per world by openssl.
"""
import os
import smtplib
import subprocess
import textwrap

import dkim

import hm_world
import hmtest

DOMAIN = hmtest.MAIL_DOMAIN


def _keypair(w):
    """RSA 2048 private key (PEM) and the p= value of its DKIM record."""
    key = os.path.join(w, "dkim.key")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    import base64
    return open(key, "rb").read(), base64.b64encode(der).decode()


def _txt(name, text):
    """A TXT record line; long texts split into 200-byte strings."""
    parts = " ".join(f'"{text[i:i + 200]}"' for i in range(0, len(text), 200))
    return f"{name} IN TXT ( {parts} )"


class MailauthWorld:
    """See the module docstring.  macros: extra Exim macros (000_localmacros);
    scan_conf: extra scan.conf lines; mailauth=False: HOMEMAIL_MAILAUTH = no;
    mx_host: a function of the world giving the host for the Exim (default: "mx")."""

    def __init__(self, macros="", scan_conf="", mailauth=True, dkim_record=True, mx_host=None):
        self.world = hm_world.World()
        self.src = f"{self.world.prefix}.1"
        self.mx = self.world.add_host("mx")
        self.wdir = self.world.w
        self.key, pub = _keypair(self.wdir)
        spf_pass = f'"v=spf1 ip4:{self.world.prefix}.0/24 -all"'
        zones = {
            "sender.test": [f"@ IN TXT {spf_pass}"],
            "spffail.test": ['@ IN TXT "v=spf1 -all"'],
            "reject.test": ['@ IN TXT "v=spf1 -all"',
                            '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@reject.test"']
                           + ([_txt("sel._domainkey", f"v=DKIM1; k=rsa; p={pub}")]
                              if dkim_record else []),
            "quarantine.test": ['_dmarc IN TXT "v=DMARC1; p=quarantine"'],
            "none.test": ['_dmarc IN TXT "v=DMARC1; p=none"'],
            "slow.test": ['_dmarc IN TXT "v=DMARC1; p=reject"'],
            # a policy, and keys in a child zone that does not load: bind9
            # answers SERVFAIL for every key (a DNS failure, not a missing key)
            "tempdkim.test": ['_dmarc IN TXT "v=DMARC1; p=reject"'],
            "_domainkey.tempdkim.test": ["this line does not parse"],
        }
        self.dns_host = self.world.start_dns(zones)
        self.user = hmtest.make_user(prefix="hmma")
        self.dovecot = hmtest.PackageDovecot(None, users=[self.user]).start()
        self.history = hmtest._mkdir(os.path.join(self.wdir, "dmarc-history"), 0o750)
        subprocess.run(["chown", "Debian-exim:Debian-exim", self.history], check=True)
        self.scan_conf = os.path.join(self.wdir, "scan.conf")
        with open(self.scan_conf, "w") as f:
            f.write(f"dmarc_history = {self.history}\n" + scan_conf)
        os.chmod(self.scan_conf, 0o644)
        self.exim = self.new_exim(mx_host(self) if mx_host else self.mx, mailauth, macros)

    def new_exim(self, host, mailauth=True, macros="", confd=None):
        """A started PackageExim in host with this world's scan.conf
        (confd: another conf.d tree, as PackageExim's)."""
        return hmtest.PackageExim(
            self.dovecot, user_check=False, host=host, env=hmtest.sanitizer_env(), confd=confd,
            macros=textwrap.dedent(f"""\
                add_environment = HOMEMAIL_SCAN_CONF={self.scan_conf}
                HOMEMAIL_MAILAUTH = {'yes' if mailauth else 'no'}
                """) + macros).start()

    # -- messages ---------------------------------------------------------------
    def message(self, from_addr, subject="test", body="hello\n", extra_headers="",
                sign_domain=None, size=None):
        """A message to the test user; signed by sign_domain (selector sel)
        with this world's key when given (a list: one signature each);
        body padded to size bytes."""
        if size:
            line = "x" * 76 + "\n"
            body = body + line * max(0, (size - len(body)) // len(line))
        m = hmtest.make_message(subject=subject, body=body, sender=from_addr,
                                to=self.user.address, extra_headers=extra_headers)
        for d in ([sign_domain] if isinstance(sign_domain, str) else sign_domain or []):
            sig = dkim.sign(m, b"sel", d.encode(), self.key,
                            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
            m = sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + m
        return m

    def send(self, mail_from, msg, between=None, exim=None):
        """Send one message from the root namespace (198.18.N.1).  between:
        called after RCPT, before DATA.  Returns (code, text) of the final
        reply (RCPT's when RCPT is refused)."""
        exim = exim or self.exim
        with smtplib.SMTP(exim.addr, exim.smtp_port, timeout=60,
                          source_address=(self.src, 0)) as s:
            s.ehlo("client.sender.test")
            code, text = s.mail(mail_from)
            if code >= 400:
                return code, text.decode()
            code, text = s.rcpt(self.user.address)
            if code >= 400:
                return code, text.decode()
            if between:
                between()
            code, text = s.data(msg)
            return code, text.decode()

    def delivered(self, folder="", n=1, timeout=20):
        """Wait for n messages in a folder of the user's Maildir; their bytes."""
        hmtest.wait_for(lambda: len(hmtest.maildir_files(self.user.maildir, folder)) >= n,
                        timeout, 0.1, f"{n} message(s) in '{folder or 'INBOX'}'")
        return [open(p, "rb").read() for p in hmtest.maildir_files(self.user.maildir, folder)]

    def close(self):
        try:
            self.exim.stop()
            self.dovecot.stop()
        finally:
            self.world.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
