"""Exim in the running lab, probed by a real SMTP client (smtplib).

Outside behaviour is probed from 127.0.0.2: the stock configs trust 127.0.0.1.
"""
import smtplib

import pytest

import labconf as L


def _ehlo(port, source=L.OUTSIDE):
    s = smtplib.SMTP(L.HOST, port, timeout=30, source_address=(source, 0))
    s.ehlo("probe.example.net")
    return s


def test_starttls_on_25_presents_the_lab_certificate():
    s = _ehlo(25)
    try:
        assert s.has_extn("starttls")
        s.starttls(context=L.tls_context())   # verifies chain and name
        der = s.sock.getpeercert(binary_form=True)
    finally:
        s.quit()
    assert der == L.leaf_der()


@pytest.mark.parametrize("port", [25, 587])
def test_auth_not_offered_before_tls(port):
    s = _ehlo(port)
    try:
        assert not s.has_extn("auth"), s.esmtp_features
        s.starttls(context=L.tls_context())
        s.ehlo("probe.example.net")
        assert "PLAIN" in s.esmtp_features.get("auth", "").upper()
    finally:
        s.quit()


@pytest.mark.parametrize("port", [587, 465])
def test_auth_works_on_submission_ports(port):
    rcpt = "maria@" + L.DOMAIN
    subject, msg = L.make_message(rcpt)
    L.submit("roberto", [rcpt], msg, port=port, source=L.OUTSIDE)
    got = L.imap_find("maria", subject)
    L.assert_intact(got, msg)


def test_wrong_password_is_refused():
    s = smtplib.SMTP(L.HOST, 587, timeout=30, source_address=(L.OUTSIDE, 0))
    try:
        s.starttls(context=L.tls_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("roberto", "not-the-password")
    finally:
        s.close()


def test_submission_requires_auth():
    s = _ehlo(587)
    try:
        s.starttls(context=L.tls_context())
        s.ehlo("probe.example.net")
        s.mail("someone@example.net")
        code, text = s.rcpt("roberto@" + L.DOMAIN)
        assert code == 550 and b"authentication required" in text, (code, text)
    finally:
        s.quit()


def test_no_relay_for_unauthenticated_clients():
    s = _ehlo(25)
    try:
        s.starttls(context=L.tls_context())
        s.ehlo("probe.example.net")
        s.mail("someone@example.net")
        code, text = s.rcpt("victim@example.org")
        assert code == 550 and b"relay not permitted" in text, (code, text)
    finally:
        s.quit()


def test_unknown_recipient_refused_at_rcpt():
    s = _ehlo(25)
    try:
        s.mail("someone@example.net")
        code, text = s.rcpt("nosuchuser-7f3a@" + L.DOMAIN)
        assert code == 550, (code, text)
        code, text = s.rcpt("roberto@" + L.DOMAIN)
        assert code == 250, (code, text)
    finally:
        s.quit()


def test_inbound_mail_on_25_is_delivered():
    rcpt = "roberto@" + L.DOMAIN
    subject, msg = L.make_message(rcpt, sender="friend@example.net")
    s = _ehlo(25)
    try:
        s.starttls(context=L.tls_context())
        s.ehlo("probe.example.net")
        assert not s.sendmail("friend@example.net", [rcpt], msg)
    finally:
        s.quit()
    L.assert_intact(L.imap_find("roberto", subject), msg)


def test_postmaster_and_abuse_reach_a_mailbox():
    for lp in ("postmaster", "abuse"):
        subject, msg = L.make_message(lp + "@" + L.DOMAIN, sender="friend@example.net")
        s = _ehlo(25)
        try:
            assert not s.sendmail("friend@example.net", [lp + "@" + L.DOMAIN], msg)
        finally:
            s.quit()
        L.assert_intact(L.imap_find("roberto", subject), msg)


def test_system_account_mail_goes_to_root():
    """Cron output of a system account (Roundcube's gc.sh runs as www-data,
    whose home it cannot write) is routed to root through /etc/aliases, not
    deferred forever by a Maildir it cannot create."""
    import subprocess
    r = subprocess.run(["exim4", "-bt", "www-data@" + L.DOMAIN], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("root@"), r.stdout   # the address it became
