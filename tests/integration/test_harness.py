"""test_harness.py — the harness itself against the stock path: a private exim
delivers through Debian's dovecot-lda into a test user's Maildir and a private
dovecot serves it over IMAPS and POP3S byte for byte.  If this fails, every
other integration test's failure says nothing about homemail."""
import hmtest


def test_stock_roundtrip(user, dovecot_for):
    d = dovecot_for([user])
    e = hmtest.Exim(None, transport_command=f"/usr/lib/dovecot/dovecot-lda -c {d.conf_path}")
    with e:
        msg = hmtest.make_message(subject="harness", to=user.address, body="line 1\nline 2\n")
        refused = hmtest.send(e.smtp_port, "alice@example.org", [user.address], msg)
        assert refused == {}
        e.wait_queue_empty(30)
    files = hmtest.maildir_files(user.maildir)
    assert len(files) == 1, e.mainlog()
    c = d.imap(user)
    c.select("INBOX")
    typ, data = c.fetch("1", "(BODY.PEEK[TEXT])")
    assert typ == "OK"
    assert data[0][1] == b"line 1\r\nline 2\r\n"
    c.logout()
    p = d.pop3(user)
    assert p.stat()[0] == 1
    p.quit()


def test_unknown_user_refused_when_verifying(dovecot_for):
    e = hmtest.Exim(None, transport_command="/bin/false", verify_recipient=True)
    with e:
        import smtplib
        try:
            hmtest.send(e.smtp_port, "a@example.org", ["nosuchuser-xyz@home.com.bo"],
                        hmtest.make_message(), source="127.0.0.2")
            raised = False
        except smtplib.SMTPRecipientsRefused as ex:
            raised = True
            code = list(ex.recipients.values())[0][0]
        assert raised and code == 550


def test_no_relay_for_outside_clients():
    e = hmtest.Exim(None, transport_command="/bin/false")
    with e:
        import smtplib
        try:
            hmtest.send(e.smtp_port, "a@example.org", ["x@elsewhere.example"],
                        hmtest.make_message(), source="127.0.0.2")
            raised = False
        except smtplib.SMTPRecipientsRefused:
            raised = True
        assert raised
