"""test_clamav.py — ClamAV at DATA (issue 17), through the package's Exim
configuration (hmtest.PackageExim: Debian's conf.d with homemail's
acl/45_homemail_check_data section 2 and main/05_homemail_antivirus), a
private clamd with homemail's test signatures (hm_clamav.Clamd) and the
package's Dovecot (recipient check at RCPT; delivery by homemail-deliver).

  * EICAR, plain, zipped and base64 inside a multipart: 550 at DATA with a
    neutral text on the wire, the signature name in Exim's log;
  * a clean message to five recipients is delivered to all five and clamd
    scans it once (clamd logs every file it scans: LogClean);
  * clamd stopped: 451, the message is nowhere; the client retries after
    clamd is back and the message lands in the Maildir;
  * clamd with no database (it refuses to start): 451;
  * HOMEMAIL_AV_ON_FAILURE = pass: infected mail is still refused, a message
    that could not be scanned is accepted with `X-Homemail-AV: unscanned`
    and a log line; a sender's own X-Homemail-AV is removed;
  * two messages on one connection: each gets its own verdict;
  * the order (docs/filtering.md): the MIME policy's refusals come first, in
    the DATA ACL (homemail_mime_verdict): a forbidden .exe attachment is
    refused without clamd seeing it; with HOMEMAIL_MIME_FIRST = no, clamd
    scans it and local_scan refuses it after.  Every message of the scan
    corpus gets the verdict local_scan would give, from the ACL; accepted
    mail is judged once more by local_scan (one X-Homemail-Scan, one log line).
"""
import base64
import email
import io
import os
import re
import secrets
import smtplib
import socket
import zipfile

import pytest

import hm_clamav
import hmtest

NEUTRAL = "message refused by the virus scanner"
SIG = "Homemail.Test.EICAR.UNOFFICIAL"     # clamd adds .UNOFFICIAL to local signatures


@pytest.fixture(scope="module")
def av():
    """(clamd, dovecot, exim, users): the package's Exim scanning with a private clamd."""
    users = [hmtest.make_user(prefix="hmv") for _ in range(5)]
    clamd = hm_clamav.Clamd().start()
    d = hmtest.PackageDovecot(None, users=users, auth_backend=True).start()
    e = hmtest.PackageExim(d, user_check=True, macros=clamd.exim_macros()).start()
    yield clamd, d, e, users
    e.stop()
    d.stop()
    clamd.stop()


def sender():
    return f"s-{secrets.token_hex(5)}@example.org"


def mime(parts, subject):
    """A multipart/mixed message: parts are (headers, body) pairs, CRLF on the wire."""
    b = "b-" + secrets.token_hex(8)
    body = "This is a MIME message.\n"
    for hdrs, text in parts:
        body += f"--{b}\n{hdrs}\n\n{text}\n"
    body += f"--{b}--\n"
    return hmtest.make_message(subject=subject, body=body,
                               extra_headers="MIME-Version: 1.0\r\n"
                               f"Content-Type: multipart/mixed; boundary=\"{b}\"\r\n")


def b64(data):
    return "\n".join(base64.encodebytes(data).decode().split())


def eicar_plain():
    return hmtest.make_message(subject="eicar plain", body=hm_clamav.EICAR.decode() + "\n")


def eicar_zip():
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("readme.txt", "nothing to see\n")
        f.writestr("notes/eicar.txt", hm_clamav.EICAR)
    return mime([("Content-Type: text/plain", "see the archive"),
                 ("Content-Type: application/zip; name=\"notes.zip\"\n"
                  "Content-Transfer-Encoding: base64\n"
                  "Content-Disposition: attachment; filename=\"notes.zip\"", b64(z.getvalue()))],
                "eicar zipped")


def eicar_multipart():
    return mime([("Content-Type: text/plain", "the file"),
                 ("Content-Type: application/octet-stream; name=\"data.txt\"\n"
                  "Content-Transfer-Encoding: base64\n"
                  "Content-Disposition: attachment; filename=\"data.txt\"",
                  b64(hm_clamav.EICAR + b"\n"))],
                "eicar base64 in multipart")


def refused(e, frm, rcpts, m):
    """(code, text) of the refusal at DATA; fails if the message is accepted."""
    with pytest.raises(smtplib.SMTPDataError) as ex:
        hmtest.send(e.smtp_port, frm, rcpts, m)
    return ex.value.smtp_code, ex.value.smtp_error.decode(errors="replace")


def exim_id(e, frm):
    """Exim's id of the message received from frm (its '<=' line)."""
    m = re.search(r"^\S+ \S+ (\S+) <= " + re.escape(frm) + " ", e.mainlog(), re.M)
    assert m, f"no '<= {frm}' line:\n" + e.log_tail()
    return m.group(1)


def in_maildir(u, tag):
    return [p for p in hmtest.maildir_files(u.maildir) if tag.encode() in open(p, "rb").read()]


@pytest.mark.parametrize("make", [eicar_plain, eicar_zip, eicar_multipart],
                         ids=["plain", "zipped", "multipart-base64"])
def test_eicar_refused_at_data(av, make):
    clamd, _, e, users = av
    frm = sender()
    code, text = refused(e, frm, [users[0].address], make())
    assert code == 550, (code, text, e.log_tail())
    assert text == NEUTRAL, "the wire text must be the neutral one (no signature name)"
    line = [ln for ln in e.mainlog().splitlines() if f"F=<{frm}>" in ln]
    assert line and line[-1].endswith("rejected after DATA: malware found: " + SIG), \
        e.log_tail()
    assert [ln for ln in clamd.log().splitlines() if ln.endswith(SIG + " FOUND")]
    assert not in_maildir(users[0], "eicar"), "an infected message was delivered"


def test_clean_message_scanned_once_for_five_recipients(av):
    clamd, _, e, users = av
    frm = sender()
    tag = "five-" + secrets.token_hex(4)
    m = mime([("Content-Type: text/plain", f"hello {tag}"),
              ("Content-Type: text/plain; name=\"notes.txt\"\n"
               "Content-Disposition: attachment; filename=\"notes.txt\"", "plain notes")],
             tag)
    assert hmtest.send(e.smtp_port, frm, [u.address for u in users], m) == {}
    for u in users:
        hmtest.wait_for(lambda: in_maildir(u, tag), 30, 0.1, f"{tag} in {u.name}'s Maildir")
    mid = exim_id(e, frm)
    scans = clamd.scans(mid)
    assert len(scans) == 1, f"clamd scanned message {mid} {len(scans)} times: {scans}"
    assert scans[0].endswith(": OK")
    # the MIME policy ran in the ACL and in local_scan; one verdict line, one header
    assert len(re.findall(f"^\\S+ \\S+ {mid} homemail-scan: ", e.mainlog(), re.M)) == 1
    copy = email.message_from_binary_file(open(in_maildir(users[0], tag)[0], "rb"))
    assert len(copy.get_all("X-Homemail-Scan")) == 1


def test_clamd_stopped_defers_then_retry_is_delivered(av):
    clamd, _, e, users = av
    u = users[1]
    frm = sender()
    tag = "retry-" + secrets.token_hex(4)
    m = hmtest.make_message(subject=tag, body=f"clean {tag}\n", to=u.address)
    clamd.stop()
    try:
        code, text = refused(e, frm, [u.address], m)
        assert code == 451, (code, text, e.log_tail())
        assert text == "virus scanner unavailable, please try again later", text
        assert "malware acl condition: clamd" in e.paniclog(), e.log_tail()
        assert f"F=<{frm}> temporarily rejected after DATA" in e.mainlog()
        assert not in_maildir(u, tag)
    finally:
        clamd.start()
    # the client's retry, once clamd is back
    assert hmtest.send(e.smtp_port, frm, [u.address], m) == {}
    hmtest.wait_for(lambda: in_maildir(u, tag), 30, 0.1, "the retried message in the Maildir")
    assert len(clamd.scans(exim_id(e, frm))) == 1


def test_clamd_without_database_defers():
    """An offline host where freshclam never fetched: clamd refuses to start."""
    u = hmtest.make_user(prefix="hmw")
    clamd = hm_clamav.Clamd(signatures=()).start(expect_up=False)
    assert clamd.wait_exit() != 0
    assert "No supported database files found" in clamd.output()
    e = hmtest.PackageExim(None, user_check=False, macros=clamd.exim_macros(), probe=False)
    try:
        e.start()
        frm = sender()
        code, text = refused(e, frm, [u.address],
                             hmtest.make_message(subject="nodb", to=u.address))
        assert code == 451, (code, text, e.log_tail())
        assert e.queue_count() == 0
    finally:
        e.stop()


def test_pass_mode_marks_unscanned_and_still_refuses_malware():
    u = hmtest.make_user(prefix="hmp")
    clamd = hm_clamav.Clamd().start()
    e = hmtest.PackageExim(None, user_check=False, macros=clamd.exim_macros(on_failure="pass"))
    try:
        e.start()
        # scanner up: malware refused, clean mail carries no mark
        code, _ = refused(e, sender(), [u.address], eicar_multipart())
        assert code == 550
        forged = "X-Homemail-AV: scanned, clean\r\n"
        t1 = "up-" + secrets.token_hex(4)
        f1 = sender()
        hmtest.send(e.smtp_port, f1, [u.address],
                    hmtest.make_message(subject=t1, to=u.address, extra_headers=forged))
        # two malware conditions in pass mode, one scan (Exim keeps the result)
        assert len(clamd.scans(exim_id(e, f1))) == 1, clamd.scans(exim_id(e, f1))
        # scanner down: accepted, marked and logged
        clamd.stop()
        t2 = "down-" + secrets.token_hex(4)
        frm = sender()
        hmtest.send(e.smtp_port, frm, [u.address],
                    hmtest.make_message(subject=t2, to=u.address, extra_headers=forged))
        got = {}
        for t in (t1, t2):
            p = hmtest.wait_for(lambda: in_maildir(u, t), 30, 0.1, f"{t} delivered")[0]
            got[t] = email.message_from_binary_file(open(p, "rb")).get_all("X-Homemail-AV")
        assert got[t1] is None, "a sender's X-Homemail-AV survived, or a scanned message was marked"
        assert got[t2] == ["unscanned (virus scanner unavailable)"], got[t2]
        assert re.search(f"^\\S+ \\S+ {exim_id(e, frm)} .*Warning: clamd: no verdict "
                         r"\(scanner unreachable or failed\): accepted unscanned$",
                         e.mainlog(), re.M), e.log_tail()
    finally:
        e.stop()
        clamd.stop()


def exe_message():
    return mime([("Content-Type: text/plain", "run this"),
                 ("Content-Type: application/octet-stream; name=\"setup.exe\"\n"
                  "Content-Transfer-Encoding: base64\n"
                  "Content-Disposition: attachment; filename=\"setup.exe\"",
                  b64(b"MZ not really a program " * 20))],
                "exe")


def test_order_mime_policy_refuses_before_clamav(av):
    """A forbidden attachment type that is not malware: refused in the DATA
    ACL by the MIME policy; clamd never sees it."""
    clamd, _, e, users = av
    frm = sender()
    code, text = refused(e, frm, [users[2].address], exe_message())
    assert code == 550 and text == 'blocked attachment type .exe (filename "setup.exe")', \
        (code, text)
    m = re.search(r"^\S+ \S+ (\S+) H=.* F=<" + re.escape(frm) + "> rejected after DATA: "
                  "blocked attachment type", e.mainlog(), re.M)
    assert m, "not refused by the DATA ACL:\n" + e.log_tail()
    assert clamd.scans(m.group(1)) == [], "clamd scanned a message the policy refuses"
    assert f"{m.group(1)} homemail-scan: reject;" in e.mainlog()


def test_order_without_mime_first_clamav_then_local_scan():
    """HOMEMAIL_MIME_FIRST = no: clamd scans first, local_scan refuses after."""
    u = hmtest.make_user(prefix="hmq")
    clamd = hm_clamav.Clamd().start()
    e = hmtest.PackageExim(None, user_check=False,
                           macros=clamd.exim_macros() + "\nHOMEMAIL_MIME_FIRST = no")
    try:
        e.start()
        frm = sender()
        code, text = refused(e, frm, [u.address], exe_message())
        assert code == 550 and "blocked attachment type .exe" in text, (code, text)
        m = re.search(r"^\S+ \S+ (\S+) F=" + re.escape(frm) + r" .* rejected by local_scan\(\)",
                      e.mainlog(), re.M)
        assert m, e.log_tail()
        scans = clamd.scans(m.group(1))
        assert len(scans) == 1 and scans[0].endswith(": OK"), scans
    finally:
        e.stop()
        clamd.stop()


def test_mime_first_with_split_spool_directory():
    """split_spool_directory = true puts the -D file in input/<6th character
    of the id>/: the DATA ACL still finds it and refuses there."""
    u = hmtest.make_user(prefix="hms")
    e = hmtest.PackageExim(None, user_check=False, macros="split_spool_directory = true")
    try:
        e.start()
        frm = sender()
        code, text = refused(e, frm, [u.address], exe_message())
        assert code == 550 and "blocked attachment type .exe" in text, (code, text)
        assert re.search(r" F=<" + re.escape(frm) + "> rejected after DATA: blocked attachment",
                         e.mainlog()), e.log_tail()
        assert "not readable in the DATA ACL" not in e.mainlog()
    finally:
        e.stop()


def test_one_connection_several_messages(av):
    """Verdicts belong to their message: Exim keeps a scan's result (and our
    acl_m_ variables) for the rest of that message only."""
    clamd, _, e, users = av
    u = users[3]
    tags = ["c1-" + secrets.token_hex(4), "c4-" + secrets.token_hex(4)]
    with smtplib.SMTP("127.0.0.1", e.smtp_port, timeout=60) as s:
        s.ehlo("client.example")
        s.sendmail(sender(), [u.address], hmtest.make_message(subject=tags[0], to=u.address))
        for bad, text in ((eicar_multipart(), NEUTRAL), (exe_message(), "blocked attachment")):
            with pytest.raises(smtplib.SMTPDataError) as ex:
                s.sendmail(sender(), [u.address], bad)
            assert ex.value.smtp_code == 550 and text in ex.value.smtp_error.decode()
        s.sendmail(sender(), [u.address], hmtest.make_message(subject=tags[1], to=u.address))
    for t in tags:
        hmtest.wait_for(lambda: in_maildir(u, t), 30, 0.1, f"{t} delivered")


CORPUS = os.path.join(hmtest.TOP, "tests", "scan-corpus")


def corpus():
    """(path, expected Exim verdict) of the checked-in scan corpus."""
    out = []
    for line in open(os.path.join(CORPUS, "MANIFEST")):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        exim = next((x[5:] for x in f[3:] if x.startswith("exim=")), f[1])
        out.append((os.path.join(CORPUS, f[0]), exim))
    return out


def smtp_bytes(port, frm, rcpt, data):
    """(code, text) of the DATA reply; raw socket, LF -> CRLF, bare CR kept
    (smtplib would repair it and hide the bare-CR cases).  From 127.0.0.2,
    an outside host: Debian's config treats 127.0.0.1 as a local submission
    and repairs missing From:/Date: fields before any check sees them."""
    with socket.create_connection(("127.0.0.1", port), timeout=60,
                                  source_address=("127.0.0.2", 0)) as so:
        f = so.makefile("rb")

        def reply():
            while True:
                ln = f.readline()
                if len(ln) < 4 or ln[3:4] != b"-":
                    return int(ln[:3]), ln[4:].decode("latin-1").strip()
        reply()
        for cmd in (b"EHLO client.example", b"MAIL FROM:<%s>" % frm.encode(),
                    b"RCPT TO:<%s>" % rcpt.encode(), b"DATA"):
            so.sendall(cmd + b"\r\n")
            code, text = reply()
            if code >= 400:
                return code, text
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        so.sendall(b"".join((b"." if ln.startswith(b".") else b"") + ln + b"\r\n"
                            for ln in lines) + b".\r\n")
        return reply()


def test_corpus_verdicts_from_the_data_acl(av):
    """The ACL's verdict is local_scan's: every refusal of the scan corpus
    comes from the DATA ACL with local_scan's text, every message local_scan
    accepts is accepted (the ACL sees the same bytes)."""
    _, _, e, users = av
    wrong = []
    for path, want in corpus():
        frm = sender()
        code, text = smtp_bytes(e.smtp_port, frm, users[4].address, open(path, "rb").read())
        name = os.path.basename(path)
        if want == "reject":
            acl = re.search(r" F=<" + re.escape(frm) + "> rejected after DATA: ", e.mainlog())
            if code != 550 or not acl:
                wrong.append(f"{name}: {code} {text} (refused by the DATA ACL: {bool(acl)})")
        elif code != 250:
            wrong.append(f"{name}: {code} {text}, wanted 250")
    assert not wrong, "\n".join(wrong)
