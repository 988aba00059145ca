"""test_report.py — homemail-report counts what really happened: a private
Exim and Dovecot (the package's configuration, homemail's auth backend and
local_scan) get a run of known traffic — accepted mail from three outside
senders, submissions by a user, unknown recipients, messages the MIME
policy refuses, relay attempts, IMAP/POP3 logins good and bad, failed SMTP
AUTH — and the report built from their logs must show exactly those counts."""
import os
import re
import smtplib
import subprocess
import threading
import time

import pytest

import hmtest

REPORT = os.path.join(hmtest.BUILD, "homemail-report")


def message(frm, to, subject, size, with_from=True):
    body = ("x" * 70 + "\r\n") * (size // 72)
    head = (f"From: {frm}\r\n" if with_from else "") + (
        f"To: {to}\r\nSubject: {subject}\r\nDate: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"Message-ID: <{time.time_ns()}@example.org>\r\n\r\n")
    return (head + body).encode()


@pytest.fixture(scope="module")
def traffic():
    u1, u2 = hmtest.make_user(), hmtest.make_user()
    dv = hmtest.PackageDovecot(users=[u1, u2], auth_backend=True,
                               auth_failure_delay="0 secs").start()
    ex = hmtest.PackageExim(dovecot=dv).start()   # its start-up probe: 1 message received
    sent = {"received": 1, "local": 0, "out": 0, "unknown": 0, "mime": 0, "relay": 0,
            "auth": 0}

    def outside(sender, rcpts, n, size):
        with smtplib.SMTP("127.0.0.1", ex.smtp_port, source_address=("127.0.0.2", 0),
                          timeout=60) as s:
            s.ehlo("client.example")
            for i in range(n):
                s.sendmail(sender, rcpts, message(sender, rcpts[0], f"m{i}", size))
    senders = [("alice@example.org", [u1.address], 60, 3000),
               ("bob@example.org", [u2.address], 60, 1000),
               ("carol@example.org", [u1.address, u2.address], 40, 500)]
    threads = [threading.Thread(target=outside, args=a) for a in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent["received"] += 160
    sent["local"] += 60 + 60 + 80
    with smtplib.SMTP("127.0.0.1", ex.smtp_port, source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.example")
        for i in range(25):                      # unknown recipients, refused at RCPT
            r = s.sendmail("dave@example.org", [f"nobody{i}@home.com.bo", u1.address],
                           message("dave@example.org", u1.address, "u", 200))
            assert list(r) == [f"nobody{i}@home.com.bo"]
        sent["received"] += 25
        sent["local"] += 25
        sent["unknown"] += 25
        for i in range(15):                      # no From: -> homemail_scan.so refuses
            with pytest.raises(smtplib.SMTPDataError):
                s.sendmail("eve@example.org", [u2.address],
                           message("eve@example.org", u2.address, "m", 200, with_from=False))
        sent["mime"] += 15
        for i in range(10):                      # relay attempts
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                s.sendmail("eve@example.org", [f"x{i}@example.net"],
                           message("eve@example.org", "x@example.net", "r", 200))
        sent["relay"] += 10
    with smtplib.SMTP("127.0.0.1", ex.smtp_port, source_address=("127.0.0.2", 0)) as s:
        s.ehlo("c")
        s.starttls(context=hmtest.client_tls_context())
        s.ehlo("c")
        s.login(u1.address, u1.password)
        for i in range(8):                       # submissions by a user, to the outside
            s.sendmail(u1.address, ["friend@example.net"],
                       message(u1.address, "friend@example.net", "s", 400))
    sent["received"] += 8
    sent["out"] += 8
    sent["auth"] += 8
    for _ in range(2):                           # failed SMTP AUTH (u2: other counters)
        with smtplib.SMTP("127.0.0.1", ex.smtp_port, source_address=("127.0.0.2", 0)) as s:
            s.ehlo("c")
            s.starttls(context=hmtest.client_tls_context())
            s.ehlo("c")
            s.user, s.password = u2.address, "wrong password"
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.auth("PLAIN", s.auth_plain)    # one attempt (login() tries each mechanism)
    for _ in range(5):
        dv.imap(u1).logout()
    for _ in range(3):
        dv.pop3(u2).quit()
    import imaplib
    for _ in range(4):
        with pytest.raises(imaplib.IMAP4.error):
            dv.imap(u1, "wrong password")
    sent.update(logins=8, login_users=2, login_failed=4, smtp_auth_failed=2)
    ex.wait_queue_empty()
    hmtest.wait_for(lambda: ex.mainlog().count(" Completed") >= sent["received"], 30, 0.2,
                    "every message completed")
    conf = os.path.join(ex.w, "status.conf")
    with open(conf, "w") as f:
        f.write(f"hostname = mail.home.com.bo\ndomains = home.com.bo\n"
                f"exim_config = {ex.conf_path}\ndovecot_config = {dv.conf_path}\n"
                f"dovecot_log = {dv.log_path}\n")
    time.sleep(0.5)                              # dovecot's log process writes asynchronously
    yield sent, ex, dv, conf, (u1, u2)
    ex.stop()
    dv.stop()


def report(ex, dv, conf, *extra):
    r = subprocess.run([REPORT, "--config", conf, "--day", "today", "--exim-log",
                        os.path.join(ex.w, "log", "mainlog"), "--dovecot-log", dv.log_path]
                       + list(extra), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r
    return r.stdout


def field(text, label):
    m = re.search(rf"^\s*{re.escape(label)}\s*(\d+)", text, re.M)
    assert m, f"{label!r} not in\n{text}"
    return int(m.group(1))


def test_report_counts_equal_the_traffic(traffic):
    sent, ex, dv, conf, (u1, u2) = traffic
    text = report(ex, dv, conf)
    assert field(text, "received") == sent["received"], text
    assert field(text, "by users") == sent["auth"], text
    assert field(text, "delivered here") == sent["local"], text
    assert field(text, "sent out") == sent["out"], text
    assert field(text, "bounced") == 0
    assert field(text, "deferred") == 0
    assert field(text, "REFUSED") == sent["unknown"] + sent["mime"] + sent["relay"], text
    assert field(text, "unknown recipient") == sent["unknown"]
    assert field(text, "MIME policy") == sent["mime"]
    assert field(text, "relay denied") == sent["relay"]
    assert field(text, "IMAP/POP3/Sieve") == sent["logins"], text
    assert f"({sent['login_users']} users)" in text
    assert field(text, "failed") == sent["login_failed"], text
    assert field(text, "SMTP AUTH failed") == sent["smtp_auth_failed"], text
    assert field(text, "lockouts") == 0
    # top senders by volume: alice (60 x 3 KB) before bob (60 x 1 KB)
    senders = text.split("TOP SENDERS")[1].split("TOP RECIPIENTS")[0]
    assert senders.index("alice@example.org") < senders.index("bob@example.org"), text
    assert "60 msgs" in senders
    recips = text.split("TOP RECIPIENTS")[1].split("LOGINS")[0]
    assert recips.split()[1] == u1.address.lower(), text   # 60 x 3 KB + 40 x 0.5 KB + 25 x 0.2 KB
    # readable on a phone: no line wider than 40 columns
    assert max(len(ln) for ln in text.splitlines()) <= 40, text


def test_report_mail_and_other_days(traffic, tmp_path):
    sent, ex, dv, conf, _ = traffic
    # another day has nothing
    text = report(ex, dv, conf, "--day", "2001-01-01")
    assert field(text, "received") == 0 and field(text, "REFUSED") == 0
    # --mail hands the same text to sendmail for the postmaster
    out = tmp_path / "mail"
    fake = tmp_path / "sendmail"
    fake.write_text(f"#!/bin/sh\ncat > {out}\n")
    fake.chmod(0o755)
    with open(conf, "a") as f:
        f.write(f"sendmail = {fake}\npostmaster = admin@home.com.bo\n")
    assert report(ex, dv, conf, "--mail") == ""
    mail = out.read_text()
    assert "To: admin@home.com.bo" in mail and "Subject: mail report mail.home.com.bo" in mail
    assert f"received      {sent['received']:6}" in mail
