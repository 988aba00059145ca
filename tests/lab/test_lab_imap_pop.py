"""Dovecot in the running lab: plaintext refused before TLS, IMAPS and POP3S
return the delivered message byte for byte (imaplib, poplib)."""
import os
import poplib
import socket

import pytest

import labconf as L


def _connect(port):
    return socket.create_connection((L.HOST, port), timeout=30, source_address=(L.OUTSIDE, 0))


def test_imap_refuses_plaintext_login_before_tls():
    sock = _connect(143)
    f = sock.makefile("rb")
    try:
        assert f.readline().startswith(b"* OK")
        sock.sendall(b"a1 CAPABILITY\r\n")
        caps = f.readline()
        assert b"LOGINDISABLED" in caps and b"STARTTLS" in caps, caps
        f.readline()
        sock.sendall(b"a2 LOGIN roberto %s\r\n" % L.password("roberto").encode())
        line = f.readline()
        while line.startswith(b"* "):
            line = f.readline()
        assert line.startswith(b"a2 NO") or line.startswith(b"a2 BAD"), line
    finally:
        sock.close()


def test_pop3_refuses_plaintext_login_before_tls():
    sock = _connect(110)
    f = sock.makefile("rb")
    try:
        assert f.readline().startswith(b"+OK")
        sock.sendall(b"USER roberto\r\n")
        line = f.readline()
        if line.startswith(b"+OK"):
            sock.sendall(b"PASS %s\r\n" % L.password("roberto").encode())
            line = f.readline()
        assert line.startswith(b"-ERR"), line
    finally:
        sock.close()


@pytest.fixture(scope="module")
def delivered():
    rcpt = "maria@" + L.DOMAIN
    body = "Linea uno.\r\n..linea con punto inicial\r\n\r\nfin\r\n"
    subject, msg = L.make_message(rcpt, body=body)
    L.submit("roberto", [rcpt], msg, port=587)
    return subject, msg, L.imap_find("maria", subject)


def _maildir_file(user, subject):
    for sub in ("new", "cur"):
        d = "/home/%s/Maildir/%s" % (user, sub)
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            if subject.encode() in data:
                return data
    raise AssertionError("no file for %r in %s's Maildir" % (subject, user))


def test_imaps_returns_the_message_byte_for_byte(delivered):
    subject, msg, got = delivered
    L.assert_intact(got, msg)
    # IMAP serves exactly the stored file (LF on disk, CRLF on the wire).
    assert got == _maildir_file("maria", subject).replace(b"\n", b"\r\n")


def test_pop3s_returns_the_message_byte_for_byte(delivered):
    subject, msg, got_imap = delivered
    p = poplib.POP3_SSL(L.HOST, 995, context=L.tls_context(), timeout=30)
    try:
        p.user("maria")
        p.pass_(L.password("maria"))
        count, _ = p.stat()
        found = None
        for i in range(count, 0, -1):
            _, lines, _ = p.retr(i)
            raw = b"\r\n".join(lines) + b"\r\n"
            if subject.encode() in raw:
                found = raw
                break
    finally:
        p.quit()
    assert found is not None, "message not found over POP3S"
    L.assert_intact(found, msg)
    assert found == got_imap
