"""Sieve through the real path (issue 3): a script uploaded over ManageSieve
to a private dovecot (dovecot-managesieved, as Roundcube does it), then mail
through a private exim whose pipe transport runs build/homemail-deliver as
the recipient, exactly as the course notes' transport does.

  * the message lands in the folder the script names;
  * a vacation script sends exactly one reply per sender and period through
    exim (Auto-Submitted: auto-replied, In-Reply-To), none to a list.

homemail-deliver sends redirects and vacation replies with /usr/sbin/sendmail.
So that those reach the private exim (and never the system's), the exim
daemon of the vacation test runs in a private mount namespace in which the
private config is Exim's default config (see SendmailExim); mail to other
domains lands in that exim's outbox Maildir.

Until homemail-deliver runs the user's Sieve script these tests fail, saying
so; they never skip.
"""
import base64
import os
import re
import socket
import ssl
import subprocess
import time
import email
import email.policy

import pytest

import hmtest

DELIVER = os.environ.get("HM_DELIVER") or os.path.join(hmtest.BUILD, "homemail-deliver")
# Validation of the tests themselves against the stock stack:
#   HM_REALPATH_LDA='/usr/lib/dovecot/dovecot-lda -c {conf}' pytest ...
# runs the same tests with Pigeonhole's LDA as the transport ({conf} = the
# private dovecot's config); they must pass that way.
LDA_OVERRIDE = os.environ.get("HM_REALPATH_LDA")


# What the stock LDA needs to run Pigeonhole like homemail-deliver does.
STOCK_LDA_CONF = "lda_mailbox_autocreate = yes\nprotocol lda {\n  mail_plugins = sieve\n}\n"


def _dovecot(dovecot_for, user):
    return dovecot_for([user], extra_conf=STOCK_LDA_CONF if LDA_OVERRIDE else "")


def _transport(d):
    if LDA_OVERRIDE:
        return LDA_OVERRIDE.format(conf=d.conf_path)
    return DELIVER


# ---------------------------------------------------------------------------
# A tiny ManageSieve client (RFC 5804): enough for AUTHENTICATE PLAIN,
# PUTSCRIPT, SETACTIVE, LISTSCRIPTS, LOGOUT, with STARTTLS like Roundcube.
class ManageSieve:
    def __init__(self, port, host="127.0.0.1", starttls=True):
        self.sock = socket.create_connection((host, port), timeout=20)
        self.f = self.sock.makefile("rb")
        self.caps = self._read_response()[1]
        if starttls:
            assert any(l.upper().startswith('"STARTTLS"') for l in self.caps), self.caps
            self._send(b"STARTTLS\r\n")
            ok, lines = self._read_response()
            assert ok, lines
            ctx = hmtest.client_tls_context()
            self.sock = ctx.wrap_socket(self.sock, server_hostname="mail.home.com.bo")
            self.f = self.sock.makefile("rb")
            self.caps = self._read_response()[1]     # capabilities again (RFC 5804 2.2)

    def _send(self, data):
        self.sock.sendall(data)

    def _readline(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("managesieve: connection closed")
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    def _read_response(self):
        """Lines up to the final OK/NO/BYE; returns (ok, lines incl. final)."""
        lines = []
        while True:
            line = self._readline()
            m = re.search(r"\{(\d+)\+?\}$", line)
            if m:                                  # a literal follows
                n = int(m.group(1))
                data = self.f.read(n)
                line = line[:m.start()] + data.decode("utf-8", "replace")
                self.f.readline()
            lines.append(line)
            up = line.upper()
            if up.startswith("OK") or up.startswith("NO") or up.startswith("BYE"):
                return up.startswith("OK"), lines

    @staticmethod
    def _q(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def command(self, text, literal=None):
        data = text.encode()
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self._send(data + b"\r\n")
        return self._read_response()

    def authenticate(self, user, password):
        tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        ok, lines = self.command(f'AUTHENTICATE "PLAIN" "{tok}"')
        assert ok, f"AUTHENTICATE failed: {lines}"

    def putscript(self, name, text):
        return self.command(f"PUTSCRIPT {self._q(name)}", text.encode())

    def setactive(self, name):
        return self.command(f"SETACTIVE {self._q(name)}")

    def listscripts(self):
        return self.command("LISTSCRIPTS")

    def logout(self):
        try:
            self.command("LOGOUT")
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        self.sock.close()


def upload(d, user, name, script):
    """PUTSCRIPT + SETACTIVE over ManageSieve; asserts success."""
    ms = ManageSieve(d.sieve_port)
    try:
        ms.authenticate(user.name, user.password)
        ok, lines = ms.putscript(name, script)
        assert ok, f"PUTSCRIPT refused: {lines}"
        ok, lines = ms.setactive(name)
        assert ok, f"SETACTIVE refused: {lines}"
        ok, lines = ms.listscripts()
        assert ok and any(name in l and "ACTIVE" in l for l in lines), lines
    finally:
        ms.logout()
    active = os.path.join(user.home, ".dovecot.sieve")
    assert os.path.exists(active), "managesieve did not activate the script"


# ---------------------------------------------------------------------------
class SendmailExim(hmtest.Exim):
    """hmtest.Exim whose daemon, and everything it runs (the pipe transport,
    homemail-deliver, its /usr/sbin/sendmail calls), reads this instance's
    config as Exim's default configuration file.  Done in a private mount
    namespace by bind-mounting the config over the file `exim4 -bP
    configure_file` names (the field notes' second way).  A sendmail run as
    the recipient cannot use `exim4 -C` itself: Exim keeps root for -C only
    when the caller is root or the Exim user.  Nothing outside the namespace
    changes."""

    def start(self):
        r = self.exim("-bV")
        if r.returncode != 0:
            raise RuntimeError("exim config check failed:\n" + r.stdout + r.stderr)
        target = subprocess.run(["exim4", "-bP", "configure_file"], capture_output=True,
                                text=True).stdout.strip()
        assert target.startswith("/") and os.path.exists(target), f"configure_file: {target!r}"
        script = 'mount --bind "$1" "$2" && exec exim4 -C "$1" -bdf'
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
             self.conf_path, target],
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(self.w, "stdout"), "w"),
            stderr=subprocess.STDOUT, env=dict(os.environ, **self.env))
        self.await_ready()      # listener up and the start-up probe accepted
        return self


def _need_deliver():
    if not LDA_OVERRIDE:
        assert os.access(DELIVER, os.X_OK), f"{DELIVER} is not built (make build-all)"


def _wait_files(maildir, folder, n, timeout=30):
    try:
        hmtest.wait_for(lambda: len(hmtest.maildir_files(maildir, folder)) >= n, timeout,
                        0.2, f"{n} message(s) in folder {folder or 'INBOX'}")
    except TimeoutError:
        return False
    return True


def _where(user):
    """Which folders hold mail: {folder: count} ('' = INBOX)."""
    out = {}
    md = user.maildir
    if not os.path.isdir(md):
        return out
    for n in [""] + [x[1:] for x in os.listdir(md) if x.startswith(".") and
                     os.path.isdir(os.path.join(md, x, "new"))]:
        c = len(hmtest.maildir_files(md, n))
        if c:
            out[n or "INBOX"] = c
    return out


def _wait_delivered(e, user, n, timeout=40):
    """Wait until n messages were delivered for user (or give up), then
    until exim's queue is empty."""
    try:
        hmtest.wait_for(lambda: sum(_where(user).values()) >= n, timeout, 0.2,
                        f"{n} delivered message(s)")
    except TimeoutError:
        pass
    try:
        e.wait_queue_empty(10)
    except TimeoutError:
        pass


FOLDER_SCRIPT = """\
require ["fileinto","imap4flags","subaddress"];
# rule:[Reports]
if header :contains "subject" "quarterly report"
{
	fileinto :flags "\\\\Flagged" "Work";
	stop;
}
# rule:[Plus]
if address :detail "to" "lists"
{
	fileinto "Lists";
}
"""


def test_managesieve_script_files_message(user, dovecot_for):
    """Upload over ManageSieve; exim -> homemail-deliver files by the script."""
    _need_deliver()
    d = _dovecot(dovecot_for, user)
    upload(d, user, "roundcube", FOLDER_SCRIPT)
    e = hmtest.Exim(None, transport_command=_transport(d))
    with e:
        m1 = hmtest.make_message(subject="The quarterly report is ready", to=user.address)
        m2 = hmtest.make_message(subject="lunch?", to=user.address)
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], m1) == {}
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], m2) == {}
        _wait_delivered(e, user, 2)
        where = _where(user)
        log = e.mainlog()
    assert sum(where.values()) == 2, f"not both delivered: {where}\n{log[-3000:]}"
    assert where.get("Work") == 1, (
        f"the script's folder Work got nothing: {where} -- homemail-deliver does not "
        f"(yet) run the user's Sieve script (~/.dovecot.sieve, set by ManageSieve)\n"
        f"{log[-2000:]}")
    assert where.get("INBOX") == 1, where
    # Dovecot sees the folder the LDA created, and the flag from :flags.
    c = d.imap(user)
    typ, data = c.select("Work")
    assert typ == "OK" and int(data[0]) == 1, (typ, data)
    typ, data = c.fetch("1", "(FLAGS)")
    assert typ == "OK" and b"\\Flagged" in data[0], data
    c.logout()


VACATION_SCRIPT = """\
require ["vacation"];
# rule:[Vacation]
if true
{
	vacation :days 1 :subject "Out of office" text:
I am away until Monday.
.
;
}
"""


def _replies(e):
    out = []
    for raw in e.outbox_messages():
        m = email.message_from_bytes(raw, policy=email.policy.default)
        out.append(m)
    return out


def test_vacation_one_reply_per_period(user, dovecot_for):
    _need_deliver()
    d = _dovecot(dovecot_for, user)
    upload(d, user, "vacation", VACATION_SCRIPT)
    e = SendmailExim(None, transport_command=_transport(d))
    with e:
        first = hmtest.make_message(subject="hello 1", sender="alice@example.org", to=user.address)
        mid1 = re.search(rb"Message-ID: (<[^>]+>)", first).group(1).decode()
        for i, msg in enumerate([
                first,
                hmtest.make_message(subject="hello 2", sender="alice@example.org", to=user.address),
                hmtest.make_message(subject="hello 3", sender="alice@example.org", to=user.address)]):
            assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], msg) == {}
            _wait_delivered(e, user, i + 1)
        # A mailing list message and one from another sender.
        lst = hmtest.make_message(subject="list post", sender="member@lists.example.org",
                                  to=user.address,
                                  extra_headers="List-Id: <team.lists.example.org>\r\n"
                                                "Precedence: list\r\n")
        assert hmtest.send(e.smtp_port, "team-bounces@lists.example.org", [user.address], lst) == {}
        _wait_delivered(e, user, 4)
        other = hmtest.make_message(subject="hi from bob", sender="bob@example.net", to=user.address)
        assert hmtest.send(e.smtp_port, "bob@example.net", [user.address], other) == {}
        _wait_delivered(e, user, 5)
        # A bounce (null envelope sender) never gets a reply (RFC 3834 2).
        bounce = hmtest.make_message(subject="Undelivered Mail", sender="MAILER-DAEMON@example.com",
                                     to=user.address)
        assert hmtest.send(e.smtp_port, "", [user.address], bounce) == {}
        _wait_delivered(e, user, 6)
        # Give any extra reply time to show up.
        try:
            hmtest.wait_for(lambda: len(e.outbox_messages()) >= 2, 20, 0.2, "vacation replies")
        except TimeoutError:
            pass
        time.sleep(2)
        e.wait_queue_empty(60)
        replies = _replies(e)
        log = e.mainlog()
    where = _where(user)
    assert where.get("INBOX") == 6, f"vacation must keep every message: {where}\n{log[-2000:]}"
    to_alice = [m for m in replies if "alice@example.org" in str(m.get("To", ""))]
    to_bob = [m for m in replies if "bob@example.net" in str(m.get("To", ""))]
    to_list = [m for m in replies if "lists.example.org" in str(m.get("To", ""))]
    to_daemon = [m for m in replies if "example.com" in str(m.get("To", ""))]
    assert replies, ("no vacation reply reached exim -- homemail-deliver does not (yet) run "
                     "the user's Sieve script or does not send replies through "
                     f"/usr/sbin/sendmail\n{log[-3000:]}")
    assert len(to_alice) == 1, f"{len(to_alice)} replies to alice, want exactly 1\n{log[-3000:]}"
    assert len(to_bob) == 1, f"{len(to_bob)} replies to bob, want 1 (state is per sender)"
    assert not to_list, "replied to a mailing list"
    assert not to_daemon, "replied to a message with a null envelope sender"
    assert len(replies) == 2, [str(m.get("To")) for m in replies]
    r = to_alice[0]
    assert str(r.get("Auto-Submitted", "")).lower().startswith("auto-replied"), dict(r)
    assert str(r.get("Subject")) == "Out of office", r.get("Subject")
    assert r.get("In-Reply-To", "").strip() == mid1, (r.get("In-Reply-To"), mid1)
    assert mid1 in r.get("References", ""), r.get("References")
    assert "I am away until Monday." in r.get_content(), r.get_content()
    # RFC 3834 3.3: the reply goes out with a null envelope sender.
    assert "<= <>" in log, "reply not sent with a null envelope sender"


def test_managesieve_refuses_broken_script(user, dovecot_for):
    """Roundcube relies on ManageSieve refusing scripts homemail cannot run:
    a script that does not compile is refused at PUTSCRIPT and nothing
    becomes active."""
    d = dovecot_for([user])
    ms = ManageSieve(d.sieve_port)
    try:
        ms.authenticate(user.name, user.password)
        ok, lines = ms.putscript("broken", 'require "fileinto";\nfileinto "x"\n')
        assert not ok, lines
        ok, lines = ms.command('SETACTIVE "broken"')
        assert not ok, lines
    finally:
        ms.logout()
    assert not os.path.exists(os.path.join(user.home, ".dovecot.sieve"))


REDIRECT_SCRIPT = """\
require ["copy"];
# rule:[Forward]
if header :contains "subject" "forward me"
{
	redirect :copy "archive@example.net";
}
"""


def test_redirect_copy_through_exim(user, dovecot_for):
    """redirect :copy goes out through /usr/sbin/sendmail (exim) once, with
    the original message, and the user keeps a copy."""
    _need_deliver()
    d = _dovecot(dovecot_for, user)
    upload(d, user, "forward", REDIRECT_SCRIPT)
    e = SendmailExim(None, transport_command=_transport(d))
    with e:
        m = hmtest.make_message(subject="please forward me", sender="alice@example.org",
                                to=user.address, body="forwarded body\n")
        mid = re.search(rb"Message-ID: (<[^>]+>)", m).group(1).decode()
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], m) == {}
        n = hmtest.make_message(subject="keep me here", sender="alice@example.org", to=user.address)
        assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], n) == {}
        _wait_delivered(e, user, 2)
        try:
            hmtest.wait_for(lambda: e.outbox_messages(), 20, 0.2, "the redirected copy")
        except TimeoutError:
            pass
        time.sleep(1)
        e.wait_queue_empty(60)
        out = _replies(e)
        log = e.mainlog()
    assert _where(user).get("INBOX") == 2, f"{_where(user)}\n{log[-2000:]}"
    assert len(out) == 1, (f"{len(out)} messages left for other domains, want exactly the one "
                           f"redirect\n{log[-3000:]}")
    r = out[0]
    assert r.get("Message-ID", "").strip() == mid, (r.get("Message-ID"), mid)
    assert str(r.get("Subject")) == "please forward me"
    assert "forwarded body" in r.get_content()
    assert "archive@example.net" in log, log[-2000:]


FOLDER_NAMES_SCRIPT = """\
require ["fileinto"];
# rule:[utf8]
if header :contains "subject" "utf8 name"
{
	fileinto "Entwürfe";
	stop;
}
# rule:[mutf7]
if header :contains "subject" "mutf7 name"
{
	fileinto "Entw&APw-rfe";
	stop;
}
# rule:[dotdot]
if header :contains "subject" "dotdot name"
{
	fileinto "../escape";
	stop;
}
# rule:[slash]
if header :contains "subject" "slash name"
{
	fileinto "a/b";
	stop;
}
"""


def test_folder_names(user, dovecot_for):
    """Issue 3/13: a folder named in UTF-8 reaches the folder Dovecot shows
    under that name; a name that looks like modified UTF-7 is taken
    literally, as Pigeonhole does (ManageSieve clients send UTF-8); a bad name ('..',
    '/') falls back to INBOX and never leaves the Maildir."""
    _need_deliver()
    d = _dovecot(dovecot_for, user)
    upload(d, user, "names", FOLDER_NAMES_SCRIPT)
    e = hmtest.Exim(None, transport_command=_transport(d))
    subjects = ["utf8 name", "mutf7 name", "dotdot name", "slash name"]
    with e:
        for i, subj in enumerate(subjects):
            m = hmtest.make_message(subject=subj, sender="alice@example.org", to=user.address)
            assert hmtest.send(e.smtp_port, "alice@example.org", [user.address], m) == {}
            _wait_delivered(e, user, i + 1)
        log = e.mainlog()
    where = _where(user)
    assert sum(where.values()) == 4, f"{where}\n{log[-2000:]}"
    # Nothing outside the Maildir.
    assert not os.path.exists(os.path.join(user.home, "escape"))
    assert not os.path.exists(os.path.join(user.maildir, "..", "escape"))
    c = d.imap(user)
    typ, data = c.select('"Entw&APw-rfe"')          # IMAP names are mUTF-7
    n_utf8 = int(data[0]) if typ == "OK" else 0
    c.logout()
    # a fileinto name is UTF-8, taken literally (Pigeonhole 0.5.19; issue 13):
    # "Entw&APw-rfe" is a folder of that very name, not "Entwürfe"
    assert n_utf8 == 1, (typ, data, where)
    c = d.imap(user)
    typ, data = c.select('"Entw&-APw-rfe"')
    n_literal = int(data[0]) if typ == "OK" else 0
    c.logout()
    assert n_literal == 1, (f"the name that looks like modified UTF-7 is taken literally: "
                            f"{where}\n{log[-2000:]}")
    if LDA_OVERRIDE:
        return
    assert where.get("INBOX") == 2, f"bad names must fall back to INBOX: {where}"
