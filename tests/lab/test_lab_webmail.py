"""Roundcube in the running lab, over HTTP(S) with a real client (http.client
from chosen loopback source addresses, as two different browsers would):

* HTTPS only: plain HTTP answers 301 to https://mail.home.com.bo/..., for
  every Host name; 443 presents the lab certificate; HSTS; the session
  cookies are Secure, HttpOnly and SameSite=Strict.
* Webmail logins count per browser address (issue 14, item 2): the
  homemail_client_ip plugin makes Roundcube name the browser's address in an
  IMAP ID before LOGIN, which Dovecot takes only from login_trusted_networks
  (exactly the webmail host's address). One browser address is locked by
  wrong passwords; another still logs in; Dovecot's log names each browser
  as rip. An ordinary IMAP client cannot choose its rip the same way.

Uses addresses 127.0.0.11-13 (Apache and Dovecot listen on all addresses);
the locked address is unlocked afterwards (homemail-user unlock --ip).
"""
import http.client
import os
import re
import socket
import subprocess
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import labconf as L

BROWSER_A = "127.0.0.11"      # the one that guesses passwords
BROWSER_B = "127.0.0.12"      # an honest user elsewhere
DOVECOT_LOG = "/var/log/dovecot.log"
AUTHDB_CONF = "/etc/homemail/dovecot-authdb.conf"


def _mail_address():
    return socket.gethostbyname(L.HOST)


class Browser:
    """A minimal Roundcube client: cookies, the login form's request token,
    every request from one source address over HTTPS (lab certificate)."""

    def __init__(self, source):
        self.source = source
        self.cookies = {}
        self.set_cookie_headers = []

    def request(self, method, path, body=None, scheme="https", host=None):
        if scheme == "https":
            c = http.client.HTTPSConnection(L.HOST, 443, timeout=60, context=L.tls_context(),
                                            source_address=(self.source, 0))
        else:
            c = http.client.HTTPConnection(L.HOST, 80, timeout=60, source_address=(self.source, 0))
        headers = {"Host": host or L.HOST, "User-Agent": "homemail-lab-probe"}
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        for h in r.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(h)
            name, _, rest = h.partition("=")
            value = rest.split(";", 1)[0]
            if value == "-del-":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return r, data

    def login(self, user, password):
        """Roundcube's login form; True when Roundcube let the user in."""
        r, page = self.request("GET", "/roundcube/")
        assert r.status == 200, r.status
        m = re.search(rb'name="_token" value="([^"]+)"', page)
        assert m, "no request token in the login form"
        r, page = self.request("POST", "/roundcube/?_task=login", body={
            "_token": m.group(1).decode(), "_task": "login", "_action": "login",
            "_timezone": "UTC", "_url": "", "_user": user, "_pass": password})
        if r.status == 302 and "_task=mail" in (r.headers.get("Location") or ""):
            return True
        assert r.status == 401 and b"Login failed" in page, (r.status, page[:300])
        return False


class LogTail:
    """Lines Dovecot writes to its log from now on."""

    def __init__(self):
        self.start = os.path.getsize(DOVECOT_LOG)

    def lines(self):
        with open(DOVECOT_LOG, "rb") as f:
            f.seek(self.start)
            return f.read().decode("utf-8", "replace").splitlines()

    def wait_for(self, pattern, timeout=60.0):
        """The first new line matching pattern (Dovecot's log process writes
        asynchronously); fails when none appears."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            hits = [line for line in self.lines() if rx.search(line)]
            if hits:
                return hits
            if time.time() > deadline:
                raise AssertionError("no Dovecot log line matches %r; new lines:\n%s"
                                     % (pattern, "\n".join(self.lines()[-30:])))
            time.sleep(0.3)


def _ip_max_failures():
    with open(AUTHDB_CONF, encoding="ascii") as f:
        m = re.search(r"\bip_max_failures=(\d+)", f.read())
    return int(m.group(1)) if m else 50       # docs/auth.md default


# ---- HTTPS only ---------------------------------------------------------

@pytest.mark.parametrize("host,path", [(None, "/roundcube/"), (None, "/roundcube/?_task=login"),
                                       ("ip", "/roundcube/"), ("other.example", "/")])
def test_plain_http_redirects_to_https(host, path):
    if host == "ip":
        host = _mail_address()
    r, _ = Browser(L.OUTSIDE).request("GET", path, scheme="http", host=host)
    assert r.status == 301, r.status
    want = "https://%s%s" % (L.HOST, path)
    assert r.headers["Location"] == want, (r.headers["Location"], want)
    assert not r.headers.get_all("Set-Cookie"), "cookie set over plain HTTP"


def test_plain_http_post_of_a_login_is_not_served():
    b = Browser(L.OUTSIDE)
    r, page = b.request("POST", "/roundcube/?_task=login", scheme="http",
                        body={"_task": "login", "_action": "login", "_user": "roberto", "_pass": "x"})
    assert r.status == 301 and b"roundcube_sessid" not in page, r.status


def test_https_presents_the_lab_certificate():
    with socket.create_connection((L.HOST, 443), timeout=30, source_address=(L.OUTSIDE, 0)) as raw:
        with L.tls_context().wrap_socket(raw, server_hostname=L.HOST) as s:
            der = s.getpeercert(binary_form=True)
            assert s.version() in ("TLSv1.2", "TLSv1.3"), s.version()
    assert der == L.leaf_der()


def test_hsts_and_secure_cookies():
    b = Browser(L.OUTSIDE)
    r, _ = b.request("GET", "/roundcube/")
    assert r.status == 200, r.status
    hsts = r.headers.get("Strict-Transport-Security") or ""
    m = re.fullmatch(r"max-age=(\d+)(;.*)?", hsts.strip())
    assert m and int(m.group(1)) >= 15552000, hsts      # at least 180 days
    assert "roundcube_sessid" in b.cookies, b.set_cookie_headers
    assert b.login("roberto", L.password("roberto"))
    assert "roundcube_sessauth" in b.cookies, b.set_cookie_headers
    assert b.set_cookie_headers
    for h in b.set_cookie_headers:
        attrs = [a.strip().lower() for a in h.split(";")[1:]]
        assert "secure" in attrs and "httponly" in attrs and "samesite=strict" in attrs, h


# ---- webmail logins count per browser address ---------------------------

def test_dovecot_trusts_exactly_the_webmail_host():
    got = subprocess.run(["doveconf", "-h", "login_trusted_networks"], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert got in ([_mail_address()], [_mail_address() + "/32"]), got
    # What the webmail host still sends as itself (SMTP AUTH, ManageSieve of a
    # logged-in session) can never IP-lock it (docs/auth.md, "Webmail").
    with open(AUTHDB_CONF, encoding="ascii") as f:
        m = re.search(r"\bip_exempt=(\S+)", f.read())
    assert m and _mail_address() in m.group(1).split(","), m


def test_webmail_logins_count_per_browser_address():
    """Browser A guesses until its address is locked; browser B still logs in.
    Before the plugin, Dovecot saw the webmail host for both (one counter):
    A's guesses locked B out too."""
    limit = _ip_max_failures()
    log = LogTail()
    tag = uuid.uuid4().hex[:8]
    # Unknown names, one guess each: the per-user limit never triggers, only
    # the per-address one. Roundcube's own login_rate_limit only knows users
    # that logged in before, so every guess reaches Dovecot.
    names = ["guess-%s-%d" % (tag, i) for i in range(limit)]
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda n: Browser(BROWSER_A).login(n, "wrong-" + n), names))
        assert not any(results)
        # Every guess reached Dovecot from browser A's address, none from the host's.
        log.wait_for(r"user=<%s>.*rip=%s," % (re.escape(names[-1]), re.escape(BROWSER_A)))
        guesses = [line for line in log.lines() if "guess-" + tag in line and "auth failed" in line]
        assert len(guesses) == limit, "\n".join(guesses[:5])
        assert all("rip=%s," % BROWSER_A in line for line in guesses), guesses[:3]
        # Dovecot's lockout (not some other failure) has locked browser A ...
        log.wait_for(r"%s now remote address locked out" % re.escape(BROWSER_A))
        # ... so even the right password fails from there ...
        assert not Browser(BROWSER_A).login("roberto", L.password("roberto"))
        log.wait_for(r"auth failed.*user=<roberto>, .*rip=%s," % re.escape(BROWSER_A))
        # ... while browser B gets in, and Dovecot names B as the login's rip.
        assert Browser(BROWSER_B).login("roberto", L.password("roberto"))
        log.wait_for(r"Login: user=<roberto>, .*rip=%s, lip=%s," % (re.escape(BROWSER_B),
                                                                   re.escape(_mail_address())))
    finally:
        subprocess.run(["homemail-user", "unlock", "--ip", BROWSER_A], capture_output=True,
                       timeout=60, check=True)
        subprocess.run(["homemail-user", "unlock", "roberto"], capture_output=True,
                       timeout=60, check=False)
    assert Browser(BROWSER_A).login("roberto", L.password("roberto")), "unlock --ip did not lift it"


def _imaps_id_login(source, user, password, originating):
    """IMAPS from `source`: ID with x-originating-ip before LOGIN (what a
    client would send to choose its rip); returns the tagged LOGIN reply."""
    kw = {"source_address": (source, 0)} if source else {}
    raw = socket.create_connection((L.HOST, 993), timeout=30, **kw)
    s = L.tls_context().wrap_socket(raw, server_hostname=L.HOST)
    f = s.makefile("rb")
    try:
        assert f.readline().startswith(b"* OK")
        s.sendall(b'a1 ID ("name" "lab-probe" "x-originating-ip" "%s")\r\n' % originating.encode())
        line = f.readline()
        while line.startswith(b"* "):
            line = f.readline()
        assert line.startswith(b"a1 OK"), line
        s.sendall(b'a2 LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
        line = f.readline()
        while line.startswith(b"* "):
            line = f.readline()
        s.sendall(b"a3 LOGOUT\r\n")
        return line
    finally:
        s.close()


def test_imap_client_cannot_choose_its_rip():
    """x-originating-ip from an address outside login_trusted_networks is
    ignored; from the webmail host it is honoured (the route the plugin uses)."""
    log = LogTail()
    spoof_user = "spoof-%s" % uuid.uuid4().hex[:8]
    assert _imaps_id_login(L.OUTSIDE, spoof_user, "wrong", "203.0.113.77").startswith(b"a2 NO")
    line = log.wait_for(r"user=<%s>" % spoof_user)[0]
    assert "rip=%s," % L.OUTSIDE in line and "203.0.113.77" not in line, line
    # The webmail host (the kernel picks its address as source) may name one.
    assert _imaps_id_login(None, "roberto", L.password("roberto"), "127.0.0.13").startswith(b"a2 OK")
    line = log.wait_for(r"Login: user=<roberto>, .*rip=127\.0\.0\.13,")[0]
    assert "lip=%s," % _mail_address() in line, line
