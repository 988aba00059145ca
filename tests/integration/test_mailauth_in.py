"""test_mailauth_in.py — incoming sender authentication through the real
daemons (issue 15, docs/mailauth.md): the package's Exim configuration in a
network namespace resolving through a private bind9 (hm_mailauth), SPF at
RCPT, DKIM verified by Exim, DMARC in homemail_scan.so, delivery by
homemail-deliver into the recipient's Maildir.

Each case names what it guards:
  * a forged From: of a p=reject domain is refused at SMTP time by DMARC
    (the envelope sender's SPF passes, so SPF is not what refuses it);
  * p=quarantine lands in the recipient's Junk folder;
  * p=none is delivered with dmarc=fail in Authentication-Results;
  * a DKIM signature by the From: domain gives dmarc=pass;
  * a DNS timeout during DMARC or SPF defers (451), never a pass; a DKIM
    key DNS cannot deliver defers only when that signature could align,
    and is asked of DNS once (a timeout waited for once, not twice:
    counted in bind9's query log, not timed);
  * each signature is listed once in Authentication-Results (the DKIM ACL
    runs once per signature, also for one with an i= identity);
  * a sender domain without an SPF record is asked once, not again with
    the search domains of the host's resolv.conf;
  * a forged Authentication-Results with our authserv-id is removed;
  * an SPF hard fail is refused at RCPT (HOMEMAIL_SPF_FAIL = refuse) or
    recorded (mark);
  * the aggregate-report data line is written.
One world serves all cases (one bind9, one Exim, one Dovecot): ~10 s.
"""
import os
import re
import signal

import pytest

import hm_mailauth

AR_ID = "mail.home.com.bo"


@pytest.fixture(scope="module")
def mw():
    w = hm_mailauth.MailauthWorld()
    yield w
    w.close()


def _authres(msg):
    """The Authentication-Results fields of a stored message, unfolded."""
    text = msg.decode(errors="replace")
    head = text.split("\n\n", 1)[0]
    fields = re.findall(r"^Authentication-Results:(.*(?:\n[ \t].*)*)", head, re.M | re.I)
    return [" ".join(f.split()) for f in fields]


def _stopped(pid):
    """Every thread of pid is stopped (state T): kill() only asks for it."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        return all(open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()[0] in "Tt"
                   for t in tasks)
    except OSError:
        return False


def _freeze(named):
    """Stop bind9 and return once all its threads are stopped."""
    import hmtest
    named.send_signal(signal.SIGSTOP)
    hmtest.wait_for(lambda: _stopped(named.pid), 10, 0.01, "named to stop")


def _queries(mw, name):
    """How many TXT queries for name bind9 has logged (its query log)."""
    with open(os.path.join(mw.world.w, "named.log")) as f:
        return len(re.findall(r"query: " + re.escape(name) + r" IN TXT ", f.read(), re.I))


def _settled(mw):
    """Return once bind9 has logged every query queued while it was stopped:
    a query sent now is answered only after named drained its sockets."""
    import subprocess
    import secrets
    name = f"sync-{secrets.token_hex(4)}.sender.test"
    subprocess.run(["dig", "+tries=3", "+time=2", f"@{mw.world.dns_addr}", name, "TXT"],
                   capture_output=True, check=False)
    import hmtest
    hmtest.wait_for(lambda: _queries(mw, name) >= 1, 10, 0.05, "named to log the sync query")


def _count(mw, folder=""):
    import hmtest
    return len(hmtest.maildir_files(mw.user.maildir, folder))


def test_forged_from_p_reject_refused_by_dmarc(mw):
    before = _count(mw)
    code, text = mw.send("bounce@sender.test",
                         mw.message("Chief <ceo@reject.test>", subject="wire money"))
    assert code == 550, (code, text)
    assert "DMARC policy of reject.test rejects this message" in text, text
    # and SPF passed for the envelope: DMARC, not SPF, refused it
    log = mw.exim.mainlog()
    assert re.search(r"homemail-dmarc: fail header\.from=reject\.test policy=reject dis=reject", log), log[-2000:]
    assert _count(mw) == before


def test_dkim_pass_gives_dmarc_pass(mw):
    before = _count(mw)
    m = mw.message("Chief <ceo@reject.test>", subject="signed", sign_domain="reject.test")
    code, text = mw.send("bounce@sender.test", m)
    assert code == 250, (code, text)
    msg = [m for m in mw.delivered(n=before + 1) if b"Subject: signed" in m][0]
    ar = _authres(msg)
    assert len(ar) == 1, ar
    assert ar[0].startswith(AR_ID + ";"), ar
    assert "spf=pass smtp.mailfrom=sender.test" in ar[0], ar
    assert "dkim=pass header.d=reject.test header.s=sel" in ar[0], ar
    # dkimpy signs with i=@reject.test: still one result for the one signature
    assert b"i=@reject.test" in m and ar[0].count("dkim=") == 1, ar
    assert "dmarc=pass (p=reject dis=none) header.from=reject.test" in ar[0], ar


def test_p_quarantine_goes_to_junk(mw):
    m = mw.message("Shop <news@quarantine.test>", subject="quarantined")
    code, text = mw.send("bounce@sender.test", m)
    assert code == 250, (code, text)
    junk = mw.delivered(folder="Junk", n=1)
    msg = [m for m in junk if b"Subject: quarantined" in m][0]
    ar = _authres(msg)
    assert len(ar) == 1 and "dmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.test" in ar[0], ar
    assert b"dmarc=quarantine" in msg


def test_p_none_delivered_with_dmarc_fail(mw):
    before = _count(mw)
    code, text = mw.send("bounce@sender.test",
                         mw.message("List <info@none.test>", subject="monitored"))
    assert code == 250, (code, text)
    msg = [m for m in mw.delivered(n=before + 1) if b"Subject: monitored" in m][0]
    ar = _authres(msg)
    assert len(ar) == 1, ar
    assert "spf=pass smtp.mailfrom=sender.test" in ar[0] and "dkim=none" in ar[0], ar
    assert "dmarc=fail (p=none dis=none) header.from=none.test" in ar[0], ar


def test_forged_authres_with_our_id_removed(mw):
    before = _count(mw)
    forged = (f"Authentication-Results: {AR_ID.upper()}; dmarc=pass header.from=none.test\r\n"
              f"Authentication-Results: (comment) {AR_ID};\r\n spf=pass\r\n"
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=x.example\r\n")
    code, text = mw.send("bounce@sender.test",
                         mw.message("List <info@none.test>", subject="forged-ar",
                                    extra_headers=forged))
    assert code == 250, (code, text)
    msg = [m for m in mw.delivered(n=before + 1) if b"Subject: forged-ar" in m][0]
    ar = _authres(msg)
    ours = [a for a in ar if re.match(r"(\([^)]*\)\s*)?" + re.escape(AR_ID) + r"\s*;", a, re.I)]
    assert len(ours) == 1 and "dmarc=fail" in ours[0], ar
    assert any(a.startswith("other.example;") for a in ar), ar    # someone else's stays
    assert len(ar) == 2, ar


def test_dns_timeout_defers(mw):
    """named stops answering between RCPT (SPF already looked up) and DATA:
    the DMARC lookup of slow.test times out and the message gets 451."""
    before = _count(mw)
    named = mw.world.named

    try:
        code, text = mw.send("bounce@sender.test",
                             mw.message("x <a@slow.test>", subject="slow"),
                             between=lambda: _freeze(named))
    finally:
        named.send_signal(signal.SIGCONT)
    assert code == 451, (code, text)
    assert "DMARC" in text and "try again" in text, text
    assert _count(mw) == before


def test_dkim_key_dns_failure_defers_when_it_matters(mw):
    """The only signature that could align with From: has a key DNS cannot
    deliver (SERVFAIL): the outcome is unknown, so 451, never the domain's
    p=reject (nor a signature silently taken as missing)."""
    before = _count(mw)
    key = "sel._domainkey.tempdkim.test"
    asked = _queries(mw, key)
    m = mw.message("x <a@tempdkim.test>", subject="tempdkim", sign_domain="tempdkim.test")
    code, text = mw.send("bounce@sender.test", m)
    assert code == 451, (code, text)
    assert "DMARC: temporary failure (DNS failure fetching the DKIM key" in text, text
    assert _count(mw) == before
    # Exim's verifier asked; the DKIM ACL's second look was answered from
    # Exim's cache of failed lookups, not by asking bind9 again
    assert _queries(mw, key) - asked == 1, _queries(mw, key) - asked


def test_dkim_key_timeout_waited_once(mw):
    """The DKIM key's DNS server does not answer (named stopped between RCPT
    and DATA): the key is asked once (one timeout), not once by Exim's
    verifier and again by the DKIM ACL.  Counted by the queries named logs
    when it runs again, not by time.  The message still gets 451."""
    named = mw.world.named
    key, policy = "sel._domainkey.reject.test", "_dmarc.reject.test"
    asked, asked_policy = _queries(mw, key), _queries(mw, policy)
    m = mw.message("Chief <ceo@reject.test>", subject="key-timeout", sign_domain="reject.test")
    try:
        code, text = mw.send("bounce@sender.test", m, between=lambda: _freeze(named))
    finally:
        named.send_signal(signal.SIGCONT)
    assert code == 451, (code, text)
    _settled(mw)
    # the policy lookup (after the key's) timed out too: it is what deferred
    assert _queries(mw, policy) - asked_policy == 1, "the _dmarc query was not logged"
    assert _queries(mw, key) - asked == 1, _queries(mw, key) - asked


def test_dkim_key_dns_failure_ignored_when_it_cannot_matter(mw):
    """A second, unaligned signature with an unreachable key does not hold
    back a message whose aligned signature passes."""
    before = _count(mw)
    m = mw.message("Chief <ceo@reject.test>", subject="two-sigs",
                   sign_domain=["tempdkim.test", "reject.test"])
    code, text = mw.send("bounce@sender.test", m)
    assert code == 250, (code, text)
    msg = [m for m in mw.delivered(n=before + 1) if b"Subject: two-sigs" in m][0]
    ar = _authres(msg)
    assert len(ar) == 1, ar
    assert "dkim=temperror header.d=tempdkim.test" in ar[0], ar
    assert "dkim=pass header.d=reject.test" in ar[0] and "dmarc=pass" in ar[0], ar
    assert ar[0].count("dkim=") == 2, ar        # one result per signature


def test_dns_timeout_spf_defers_at_rcpt(mw):
    """The SPF lookup times out: 451 at RCPT, never a pass."""
    named = mw.world.named
    try:
        _freeze(named)
        code, text = mw.send("x@slow.test", mw.message("x@slow.test"))
    finally:
        named.send_signal(signal.SIGCONT)
    assert code == 451, (code, text)
    assert "SPF" in text and "slow.test" in text, text


def test_spf_lookup_ignores_resolv_conf_search(mw):
    """The host's resolv.conf has a search line (Debian's installer writes
    one): the SPF lookup of a domain without an SPF record (NODATA) is not
    asked again with the search domain appended (the RCPT ACL sets Exim's
    resolver options before libspf2 asks).  Counted in bind9's query log."""
    import hm_world
    rc = os.path.join(hm_world.NETNS_ETC, mw.mx.ns, "resolv.conf")
    saved = open(rc).read()
    suffix = "search-suffix.test"
    try:
        with open(rc, "a") as f:      # read by each new receiving process
            f.write(f"search {suffix}\n")
        asked = _queries(mw, "none.test")
        code, text = mw.send("x@none.test", mw.message("List <info@none.test>", subject="search"))
    finally:
        with open(rc, "w") as f:
            f.write(saved)
    assert code == 250, (code, text)
    assert _queries(mw, "none.test") - asked == 1
    assert _queries(mw, "none.test." + suffix) == 0


def test_spf_fail_refused_at_rcpt(mw):
    code, text = mw.send("someone@spffail.test", mw.message("someone@spffail.test"))
    assert code == 550, (code, text)
    assert "SPF" in text and "spffail.test" in text, text


def test_aggregate_report_data(mw):
    assert mw.send("bounce@sender.test", mw.message("ceo@reject.test"))[0] == 550
    files = os.listdir(mw.history)
    assert files, "no report data written"
    lines = open(os.path.join(mw.history, files[0])).read().splitlines()
    rows = [ln.split("\t") for ln in lines]
    assert all(len(r) == 18 for r in rows), rows
    rej = [r for r in rows if r[2] == "reject.test" and r[9] == "reject"]
    assert rej and rej[0][1] == mw.src and rej[0][17] == "mailto:dmarc@reject.test", rows


def test_spf_fail_marked_not_refused():
    """HOMEMAIL_SPF_FAIL = mark: the hard fail is accepted and recorded."""
    with hm_mailauth.MailauthWorld(macros="HOMEMAIL_SPF_FAIL = mark\n") as w:
        code, text = w.send("someone@spffail.test", w.message("someone@spffail.test",
                                                              subject="marked"))
        assert code == 250, (code, text)
        msg = w.delivered(n=1)[0]
        ar = _authres(msg)
        assert len(ar) == 1 and "spf=fail smtp.mailfrom=spffail.test" in ar[0], ar


def test_report_command(mw, tmp_path):
    """homemail-dmarc-report turns the day's data into RFC 7489 XML and
    mails it to the rua address through sendmail (a stand-in here)."""
    import datetime
    import gzip
    import subprocess
    import xml.etree.ElementTree as ET
    import hmtest
    tool = os.path.join(hmtest.BUILD, "homemail-dmarc-report")
    # one refused and one passing message of reject.test (self-contained)
    assert mw.send("bounce@sender.test", mw.message("ceo@reject.test"))[0] == 550
    assert mw.send("bounce@sender.test", mw.message("ceo@reject.test", subject="rep",
                                                    sign_domain="reject.test"))[0] == 250
    day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    r = subprocess.run([tool, "-d", mw.history, "--date", day, "--org-name", AR_ID,
                        "--domain", "reject.test"], capture_output=True)
    assert r.returncode == 0, r
    root = ET.fromstring(r.stdout)
    assert root.findtext("policy_published/domain") == "reject.test"
    assert root.findtext("policy_published/p") == "reject"
    recs = {(x.findtext("row/policy_evaluated/disposition"), x.findtext("row/source_ip")):
            int(x.findtext("row/count")) for x in root.findall("record")}
    assert recs.get(("reject", mw.src), 0) >= 1, recs
    assert recs.get(("none", mw.src), 0) >= 1, recs        # the DKIM-signed one
    fake = tmp_path / "sendmail"
    out = tmp_path / "sent"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {out}.args\ncat > {out}\n")
    fake.chmod(0o755)
    r = subprocess.run([tool, "-d", mw.history, "--date", day, "--org-name", AR_ID,
                        "--send", "--sendmail", str(fake), "--outdir", str(tmp_path)],
                       capture_output=True)
    assert r.returncode == 0, r
    assert "dmarc@reject.test" in (tmp_path / "sent.args").read_text()
    sent = out.read_bytes()
    assert b"Subject: Report Domain: reject.test Submitter: mail.home.com.bo" in sent, sent[:500]
    gz = [p for p in os.listdir(tmp_path) if p.startswith(f"{AR_ID}!reject.test!")]
    assert len(gz) == 1 and gz[0].endswith(".xml.gz"), os.listdir(tmp_path)
    assert b"<feedback>" in gzip.decompress((tmp_path / gz[0]).read_bytes())


def test_quarantine_beats_a_trusted_sender(mw):
    """The user once moved news@quarantine.test out of Junk (trusted), but a
    message failing that domain's DMARC p=quarantine still goes to Junk:
    the trusted From: is exactly what it forged (deliver_junk.c)."""
    import hmtest
    u = mw.user
    os.makedirs(u.maildir, exist_ok=True)
    os.chown(u.maildir, u.uid, u.gid)
    lst = os.path.join(u.maildir, "homemail-junklist")
    with open(lst, "w") as f:
        f.write("# homemail junk sender lists, format 1 (docs/junk.md)\n"
                "T 1764294100 news@quarantine.test\n"
                "T 1764294100 info@none.test\n")
    os.chown(lst, u.uid, u.gid)
    os.chmod(lst, 0o600)
    try:
        junk_before = len(hmtest.maildir_files(u.maildir, "Junk"))
        inbox_before = _count(mw)
        assert mw.send("bounce@sender.test",
                       mw.message("news@quarantine.test", subject="trusted-q"))[0] == 250
        msg = [m for m in mw.delivered(folder="Junk", n=junk_before + 1)
               if b"Subject: trusted-q" in m]
        assert msg, "not in Junk"
        # the trust itself still works for mail that is not quarantined
        assert mw.send("bounce@sender.test",
                       mw.message("info@none.test", subject="trusted-n"))[0] == 250
        # (wait for this very message: under SANITIZE=1 delivery is by queue
        # runs, and an earlier test's message may land in INBOX first)
        hmtest.wait_for(lambda: [m for m in mw.delivered(n=inbox_before + 1)
                                 if b"Subject: trusted-n" in m], 30, 0.2, "trusted-n in INBOX")
    finally:
        os.unlink(lst)
