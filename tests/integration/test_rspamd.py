"""test_rspamd.py — rspamd wired into the package's Exim configuration, the
LDA and the junk plugin (docs/filtering.md), through real daemons: a private
redis-server + rspamd (hm_rspamd.py, offline set, test subject rules that
put a message in a score band), the package's exim4 conf.d (PackageExim,
section 3 of acl/45_homemail_check_data and the rate-limit block of
acl/35_homemail_check_rcpt), homemail-deliver, and a PackageDovecot loading
the junk plugin with the playbook's learn command (conf/rspamd/dovecot-learn.conf).

Guards against: GTUBE (rspamd's reject action) getting in; a junk-band
message not reaching Junk, or a sender's own X-Spam-Flag surviving; a move
out of Junk not teaching rspamd; greylisting not deferring a first attempt
from an outside address or deferring its retry; rspamd being down letting
mail in unscanned; a message being scanned once per recipient; an
authenticated user spraying recipients or GTUBE unchecked.
"""
import os
import re
import shutil
import smtplib
import subprocess
import time

import pytest

import hm_rspamd
import hm_world
import hmtest
from test_junk_plugin import PLUGIN

# greylist timeout of the private rspamd: the retry waits it out (rspamd's
# own default is 5 minutes)
GREY_SECS = 2
RATE = 3            # recipients per hour for the authenticated test users


def _plugin_dir():
    """The stock Dovecot plugins plus the junk plugin, world-readable."""
    d = hmtest._workdir("rspamdmods")
    for n in os.listdir("/usr/lib/dovecot/modules"):
        p = os.path.join("/usr/lib/dovecot/modules", n)
        if n.endswith(".so") and os.path.isfile(p):
            shutil.copy2(p, d)
    shutil.copy2(PLUGIN, d)
    return d


@pytest.fixture(scope="module")
def stack():
    world = hm_world.World()
    outside = world.add_host("out")
    redis = hm_rspamd.Redis().start()
    rs = hm_rspamd.Rspamd(redis, greylist_timeout=f"{GREY_SECS}s").start()
    users = [hmtest.make_user(prefix="hmr") for _ in range(4)]
    learn = open(os.path.join(hm_rspamd.CONF_RSPAMD, "dovecot-learn.conf")).read()
    learn = learn.replace("127.0.0.1:11334", f"127.0.0.1:{rs.controller_port}")
    # SANITIZE=1: the junk plugin carries ASan/UBSan, dovecot does not
    san = hmtest.sanitizer_env()
    if san:     # rspamc does not run with the ASan runtime preloaded (IFUNC relink)
        learn = learn.replace("/usr/bin/rspamc", "/usr/bin/env -u LD_PRELOAD /usr/bin/rspamc")
    d = hmtest.PackageDovecot(None, users=users, env=san, extra_conf=(
        hmtest.sanitizer_dovecot_conf() +
        f"mail_plugin_dir = {_plugin_dir()}\n"
        # Debian's 10-mail.conf, which the package relies on, says this
        "namespace inbox {\n  inbox = yes\n}\n" + learn))
    # the package's junk.conf.ext, where the package's 90-homemail.conf includes it
    hmtest._mkdir(os.path.join(d.w, "share"), 0o755)
    shutil.copyfile(os.path.join(hmtest.CONF_SRC, "share", "dovecot", "junk.conf.ext"),
                    os.path.join(d.w, "share", "junk.conf.ext"))
    if san:     # doveadm (the start-up probe) loads the plugin too
        d.doveadm = lambda *a, input=None, check=False: subprocess.run(
            ["doveadm", "-c", d.conf_path] + list(a), input=input, capture_output=True,
            text=True, check=check, env=dict(os.environ, **san))
    d.start()
    macros = "\n".join([
        "HOMEMAIL_RSPAMD_ENABLE = yes",
        f"HOMEMAIL_RSPAMD_ADDRESS = 127.0.0.1 {rs.port}",
        f"HOMEMAIL_OUT_RATELIMIT = {RATE} / 1h",
        # also listen where the outside host reaches the root namespace
        f"MAIN_LOCAL_INTERFACES == <; 127.0.0.1 ; {world.prefix}.1"])
    e = hmtest.PackageExim(d, user_check=False, macros=macros).start()
    yield dict(world=world, outside=outside, rs=rs, d=d, e=e, users=users)
    e.stop()
    d.stop()
    rs.stop()
    redis.stop()
    world.close()


BODY = ("This is a plain test message with enough different words for the\n"
        "statistical classifier to tokenize: meeting agenda budget report\n"
        "quarterly numbers coffee schedule holiday project deadline review\n")


def msg(subject, body=BODY, sender="someone@outside.example", to="x@home.com.bo", extra=""):
    return hmtest.make_message(subject=subject, body=body, sender=sender, to=to,
                               extra_headers=extra)


def folder_of(user, subject):
    """'' (INBOX) or 'Junk': where the message with this subject was stored."""
    hits = []
    for folder in ("", "Junk"):
        for p in hmtest.maildir_files(user.maildir, folder):
            if re.search(rb"^Subject: " + re.escape(subject.encode()) + rb"\r?$",
                         open(p, "rb").read(), re.M):
                hits.append((folder, p))
    assert len(hits) == 1, (subject, hits)
    return hits[0]


def refused_at_data(port, rcpts, raw, **kw):
    with pytest.raises(smtplib.SMTPDataError) as ex:
        hmtest.send(port, "someone@outside.example", rcpts, raw, **kw)
    return ex.value.smtp_code, ex.value.smtp_error.decode(errors="replace")


def test_gtube_refused_at_data(stack):
    e, u = stack["e"], stack["users"][0]
    code, text = refused_at_data(e.smtp_port, [u.address],
                                 msg("gtube", body=hm_rspamd.GTUBE + "\n"),
                                 source="127.0.0.2")
    assert code == 550 and "spam" in text, (code, text)
    assert re.search(r"rspamd: refused as spam, score \S+, action reject", e.mainlog())
    assert hmtest.maildir_files(u.maildir) == []


def test_junk_band_to_junk_then_ham_learned(stack):
    """A message in the add-header band lands in Junk with our X-Spam-Flag
    (the sender's forged NO/Score fields gone); moving it back to INBOX over
    IMAP makes the junk plugin run rspamc learn_ham: rspamd counts one ham."""
    e, d, rs, u = stack["e"], stack["d"], stack["rs"], stack["users"][1]
    before, ctl = rs.learned(), rs.stat()["learned"]
    forged = "X-Spam-Flag: NO\r\nX-Spam-Score: -100\r\nX-Spam-Status: No\r\n"
    assert hmtest.send(e.smtp_port, "someone@outside.example", [u.address],
                       msg("hmtest-junk-band offer", to=u.address, extra=forged),
                       source="127.0.0.2") == {}
    e.wait_queue_empty(60)
    folder, path = folder_of(u, "hmtest-junk-band offer")
    assert folder == "Junk", e.mainlog()[-2000:]
    raw = open(path, "rb").read()
    head = raw.split(b"\n\n", 1)[0]
    assert re.findall(rb"^X-Spam-Flag: (.*)$", head, re.M) == [b"YES"], head
    assert b"-100" not in head and not re.search(rb"^X-Spam-Status: No\r?$", head, re.M)
    assert re.search(rb"^X-Spam-Status: Yes, score=8\.\d+ action=", head, re.M), head
    # the user says it is not spam
    c = d.imap(u)
    try:
        c.select("Junk")
        typ, data = c.uid("SEARCH", "HEADER", "Subject", "\"hmtest-junk-band offer\"")
        assert typ == "OK" and len(data[0].split()) == 1, data
        assert c.uid("MOVE", data[0].split()[0], "INBOX")[0] == "OK"
    finally:
        c.logout()
    hmtest.wait_for(lambda: rs.learned()["ham"] == before["ham"] + 1,
                    30, 0.2, "rspamd to count one ham learned")
    assert rs.learned()["spam"] == before["spam"]
    assert rs.stat()["learned"] == ctl + 1          # the controller's counter too


def test_below_junk_band_stays_in_inbox_with_headers(stack):
    e, u = stack["e"], stack["users"][2]
    assert hmtest.send(e.smtp_port, "someone@outside.example", [u.address],
                       msg("plain hello", to=u.address,
                           extra="X-Spam-Flag: YES\r\n"), source="127.0.0.2") == {}
    e.wait_queue_empty(60)
    folder, path = folder_of(u, "plain hello")
    head = open(path, "rb").read().split(b"\n\n", 1)[0]
    # the sender's own YES is gone, so nothing sent it to Junk
    assert folder == "", head
    assert b"X-Spam-Flag" not in head, head
    assert re.search(rb"^X-Spam-Status: No, score=", head, re.M), head


def test_scanned_once_for_many_recipients(stack):
    e, rs, users = stack["e"], stack["rs"], stack["users"]
    before = rs.scanned()
    assert hmtest.send(e.smtp_port, "someone@outside.example", [u.address for u in users],
                       msg("to everyone"), source="127.0.0.2") == {}
    e.wait_queue_empty(60)
    assert rs.scanned() == before + 1


def test_greylist_defers_first_attempt_accepts_retry(stack):
    """From an outside address (a network namespace on the test bridge:
    rspamd never greylists loopback) a greylist-band message is deferred,
    and the same message retried after the greylist timeout is accepted."""
    e, out, world, u = stack["e"], stack["outside"], stack["world"], stack["users"][3]
    path = os.path.join(hmtest._workdir("greymsg"), "m.eml")
    with open(path, "wb") as f:
        f.write(msg("hmtest-greylist-band hello", to=u.address))
    argv = ["swaks", "--server", f"{world.prefix}.1", "--port", str(e.smtp_port),
            "--from", "someone@outside.example", "--to", u.address,
            "--helo", "client.outside.example", "--data", "@" + path, "--timeout", "60"]
    r = out.run(argv, text=True)
    assert r.returncode != 0 and re.search(r"<\*\* 451 .*greylisted", r.stdout), r.stdout
    assert re.search(rf"\[{re.escape(out.addr)}\].*rspamd: greylisted", e.mainlog())
    time.sleep(GREY_SECS + 1)     # the greylist timeout, not a timed assertion
    r = out.run(argv, text=True)
    assert r.returncode == 0, r.stdout
    e.wait_queue_empty(60)
    assert folder_of(u, "hmtest-greylist-band hello")[0] == ""


def test_rspamd_down_is_a_temporary_451(stack):
    """rspamd unreachable: 451 at DATA (HOMEMAIL_RSPAMD_DOWN = defer, the
    default), logged; never accepted unscanned."""
    d, u = stack["d"], stack["users"][0]
    dead = hmtest.free_port()                 # nothing listens there
    e = hmtest.PackageExim(d, user_check=False,
                           macros="HOMEMAIL_RSPAMD_ENABLE = yes\n"
                                  f"HOMEMAIL_RSPAMD_ADDRESS = 127.0.0.1 {dead}",
                           probe=False).start()
    try:
        code, text = refused_at_data(e.smtp_port, [u.address], msg("while down"),
                                     source="127.0.0.2")
        assert code == 451 and "scanner unavailable" in text, (code, text)
        assert "rspamd: no verdict (scanner unreachable or failed): deferred" in e.mainlog()
    finally:
        e.stop()
    assert not any(b"while down" in open(p, "rb").read()
                   for p in hmtest.maildir_files(u.maildir))


def test_rspamd_down_accept_mode_marks_and_logs(stack):
    """HOMEMAIL_RSPAMD_DOWN = accept (a site's choice): accepted, but marked
    X-Spam-Status: unscanned and logged, never a silent pass."""
    d, u = stack["d"], stack["users"][2]
    dead = hmtest.free_port()
    e = hmtest.PackageExim(d, user_check=False,
                           macros="HOMEMAIL_RSPAMD_ENABLE = yes\nHOMEMAIL_RSPAMD_DOWN = accept\n"
                                  f"HOMEMAIL_RSPAMD_ADDRESS = 127.0.0.1 {dead}").start()
    try:
        assert hmtest.send(e.smtp_port, "someone@outside.example", [u.address],
                           msg("accepted while down", to=u.address,
                               extra="X-Spam-Status: No, score=-50\r\n"),
                           source="127.0.0.2") == {}
        e.wait_queue_empty(60)
        assert "rspamd: no verdict (scanner unreachable or failed): accepted unscanned" \
            in e.mainlog()
    finally:
        e.stop()
    folder, path = folder_of(u, "accepted while down")
    head = open(path, "rb").read().split(b"\n\n", 1)[0]
    assert re.findall(rb"^X-Spam-Status: (.*?)\r?$", head, re.M) == [b"unscanned"], head


def _submit(e, user, rcpts, raw):
    """Authenticated submission (STARTTLS + AUTH); returns (rcpt replies, data reply)."""
    import ssl  # noqa: F401  (context comes from hmtest)
    out = []
    with smtplib.SMTP("127.0.0.1", e.smtp_port, timeout=60) as s:
        s.ehlo("client.example")
        s.starttls(context=hmtest.client_tls_context())
        s.ehlo("client.example")
        s.login(user.name, user.password)
        assert s.mail(user.address)[0] == 250
        for r in rcpts:
            out.append(s.rcpt(r))
        if not any(c == 250 for c, _ in out):
            return out, None
        return out, s.data(raw)


def test_outgoing_rate_limit_451(stack):
    e, u = stack["e"], stack["users"][0]
    rcpts = [f"friend{i}@elsewhere.example" for i in range(RATE + 3)]
    replies, data = _submit(e, u, rcpts, msg("newsletter", sender=u.address))
    codes = [c for c, _ in replies]
    assert codes[0] == 250 and 451 in codes, replies
    first = codes.index(451)
    assert all(c == 451 for c in codes[first:]), replies
    text = replies[first][1].decode()
    assert "rate limit" in text and u.name in text, text
    assert re.search(rf"ratelimit: {u.name}\S* over {RATE} / 1h", e.mainlog())
    assert data is not None and data[0] == 250, data


def test_outgoing_gtube_refused(stack):
    e, u = stack["e"], stack["users"][1]
    replies, data = _submit(e, u, ["friend@elsewhere.example"],
                            msg("out gtube", body=hm_rspamd.GTUBE + "\n", sender=u.address,
                                to="friend@elsewhere.example"))
    assert replies[0][0] == 250, replies
    assert data[0] == 550, data
    assert re.search(rf"rspamd: outgoing mail of {u.name}\S* refused as spam", e.mainlog())
    assert not any(b"out gtube" in m for m in e.outbox_messages())


def test_outgoing_below_reject_passes_unmarked(stack):
    """Outgoing mail has its own threshold (10): a score of 9 passes, is
    neither greylisted nor given X-Spam-* fields."""
    e, u = stack["e"], stack["users"][2]
    replies, data = _submit(e, u, ["friend@elsewhere.example"],
                            msg("hmtest-out-band report", sender=u.address,
                                to="friend@elsewhere.example"))
    assert data[0] == 250, (replies, data)
    e.wait_queue_empty(60)
    sent = [m for m in e.outbox_messages() if b"hmtest-out-band report" in m]
    assert len(sent) == 1 and b"X-Spam-" not in sent[0]
