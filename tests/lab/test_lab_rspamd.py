"""rspamd in the running lab (the playbook's rspamd role, docs/filtering.md),
probed by real clients: Exim refuses GTUBE at DATA and marks what it accepts,
the controller listens on loopback only and carries a hashed password,
rspamd keeps its statistics in redis.

Outside behaviour is probed from 127.0.0.2 (the stock configs trust 127.0.0.1).
"""
import json
import smtplib
import subprocess
import urllib.request

import pytest

import labconf as L

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_gtube_refused_at_data():
    to = "maria@" + L.DOMAIN
    _, msg = L.make_message(to, sender="someone@outside.example",
                            body="spam test\r\n" + GTUBE + "\r\n")
    s = smtplib.SMTP(L.HOST, 25, timeout=60, source_address=(L.OUTSIDE, 0))
    try:
        s.ehlo("probe.example.net")
        with pytest.raises(smtplib.SMTPDataError) as ex:
            s.sendmail("someone@outside.example", [to], msg)
        assert ex.value.smtp_code == 550 and b"spam" in ex.value.smtp_error
    finally:
        s.quit()


def test_accepted_mail_carries_the_verdict():
    to = "maria@" + L.DOMAIN
    subject, msg = L.make_message(to, sender="someone@outside.example",
                                  body="X-Spam-Flag: not a header\r\nplain words\r\n")
    s = smtplib.SMTP(L.HOST, 25, timeout=60, source_address=(L.OUTSIDE, 0))
    try:
        s.ehlo("probe.example.net")
        assert s.sendmail("someone@outside.example", [to], msg) == {}
    finally:
        s.quit()
    got = L.imap_find("maria", subject)
    head, _ = L.split_message(got)
    assert any(h.startswith(b"X-Spam-Status: No, score=") for h in head), head
    assert not any(h.startswith(b"X-Spam-Flag:") for h in head), head


def test_controller_on_loopback_only_with_hashed_password():
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    binds = [ln.split()[3] for ln in out.splitlines() if ln.split()[3].endswith(":11334")]
    assert binds, out
    assert all(b.startswith(("127.0.0.1:", "[::1]:")) for b in binds), binds
    conf = open("/etc/rspamd/local.d/worker-controller.inc").read()
    assert 'password = "$2$' in conf and 'enable_password = "$2$' in conf
    assert '"q1"' not in conf


def test_statistics_in_redis():
    with urllib.request.urlopen("http://127.0.0.1:11334/stat", timeout=30) as r:
        st = json.loads(r.read())
    assert {s["type"] for s in st["statfiles"]} == {"redis"}, st["statfiles"]
    assert subprocess.run(["redis-cli", "ping"], capture_output=True,
                          text=True).stdout.strip() == "PONG"
