"""labconf — what the lab probes share: names, credentials, TLS contexts.

Relies on: the playbook's results (credentials in /root/homemail-lab, the lab
certificate in /etc/homemail/tls/cert.pem, mail.home.com.bo in /etc/hosts).
Fails loudly (exceptions) when the lab is not provisioned: a probe that cannot
reach the lab must fail, never skip.
"""
import imaplib
import os
import smtplib
import ssl
import time
import uuid

DOMAIN = os.environ.get("LAB_DOMAIN", "home.com.bo")
HOST = os.environ.get("LAB_HOSTNAME", "mail." + DOMAIN)
CERT = "/etc/homemail/tls/cert.pem"      # what the daemons serve (leaf first, then chain)
CA = "/etc/homemail/tls/ca.pem"          # what verifies it (self-signed: itself; ACME: the root)
CRED_DIR = "/root/homemail-lab"
ARTIFACTS = os.environ.get("LAB_ARTIFACTS", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "lab"))
# Outside clients: loopback 127.0.0.1 is trusted by the stock configs, so
# probes of outside behaviour connect from another loopback address.
OUTSIDE = "127.0.0.2"


def password(user):
    """The generated (or vaulted) password of a lab user."""
    with open(os.path.join(CRED_DIR, user + ".password"), encoding="ascii") as f:
        return f.read().split()[0]


def tls_context():
    """A client context that trusts exactly the lab's CA file, verifying the name."""
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = True
    return ctx


def leaf_der():
    """DER of the served certificate (the first one of CERT)."""
    with open(CERT, encoding="ascii") as f:
        pem = f.read()
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(pem[:pem.index(end) + len(end)])


def make_message(to, subject=None, sender=None, body=None):
    """A small RFC 5322 message with a unique Subject; returns (subject, bytes)."""
    subject = subject or "homemail lab probe " + uuid.uuid4().hex
    sender = sender or "roberto@" + DOMAIN
    body = body or "Hola desde el laboratorio homemail.\r\nLinea dos: acentos aeiou.\r\n"
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s"
           % (sender, to, subject, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
              uuid.uuid4().hex, DOMAIN, body))
    return subject, msg.encode("ascii")


def submit(user, rcpts, msg, port=587, source=None):
    """Send through submission with STARTTLS (587) or implicit TLS (465) and AUTH."""
    kw = {"source_address": (source, 0)} if source else {}
    if port == 465:
        s = smtplib.SMTP_SSL(HOST, port, context=tls_context(), timeout=30, **kw)
    else:
        s = smtplib.SMTP(HOST, port, timeout=30, **kw)
        s.starttls(context=tls_context())
    try:
        s.login(user, password(user))
        refused = s.sendmail(user + "@" + DOMAIN, rcpts, msg)
        assert not refused, refused
    finally:
        s.quit()


def imap_find(user, subject, timeout=30.0, mailbox="INBOX"):
    """Wait until a message with this Subject is in the mailbox; return its bytes."""
    deadline = time.time() + timeout
    while True:
        m = imaplib.IMAP4_SSL(HOST, 993, ssl_context=tls_context(), timeout=30)
        try:
            m.login(user, password(user))
            typ, _ = m.select('"%s"' % mailbox, readonly=True)
            if typ == "OK":
                typ, data = m.search(None, "HEADER", "Subject", '"%s"' % subject)
                ids = data[0].split() if typ == "OK" and data and data[0] else []
                if ids:
                    typ, data = m.fetch(ids[-1], "(BODY.PEEK[])")
                    return data[0][1]
        finally:
            try:
                m.logout()
            except Exception:
                pass
        if time.time() > deadline:
            raise AssertionError("no message %r in %s/%s after %.0f s" % (subject, user, mailbox, timeout))
        time.sleep(0.5)


def body_of(raw):
    """The body of a message (after the first empty line), CRLF-normalised."""
    raw = raw.replace(b"\r\n", b"\n")
    return raw.split(b"\n\n", 1)[1]


def split_message(raw):
    """(header lines, body) of a message, CRLF-normalised; folded lines kept whole."""
    raw = raw.replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    lines = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b"\n" + line
        else:
            lines.append(line)
    return lines, body


def assert_intact(got, sent):
    """The delivered message carries the sent one unchanged: every sent header
    field, in order and byte for byte, and the identical body. (The server adds
    trace fields — Return-path, Received, X-Homemail-Scan — and nothing else.)"""
    got_h, got_b = split_message(got)
    sent_h, sent_b = split_message(sent)
    assert got_b == sent_b, "body changed:\n%r\n%r" % (got_b, sent_b)
    pos = 0
    for h in sent_h:
        assert h in got_h[pos:], "header %r missing or out of order in %r" % (h, got_h)
        pos = got_h.index(h, pos) + 1
