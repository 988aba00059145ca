"""The lab's second domain (issue 16): ventas.com.bo with the virtual
account ana@ventas.com.bo and the alias info@ventas.com.bo (inventory), probed
with real clients: mail to the account and the alias over SMTP, read over
IMAPS; quota changes seen through IMAP GETQUOTAROOT and in Roundcube; the
zone's SRV and autoconfig records and the autoconfig/autodiscover documents
over HTTPS for both domains; a password expired by the admin refuses IMAP
from outside with a clear reason, Roundcube (headless Chromium) takes the
user to the change form, the change goes through homemail-passwd, and the
new password works over IMAP while the old one does not.

The account's password is put back afterwards (homemail-user passwd), and
its quota to the inventory's, so the lab stays as the playbook left it.
"""
import http.client
import imaplib
import os
import re
import secrets
import socket
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import labconf as L
from test_lab_roundcube import _browser

VDOMAIN = "ventas.com.bo"
ANA = "ana@" + VDOMAIN
ALIAS = "info@" + VDOMAIN
QUOTA = "200M"            # the inventory's
DOMAINS = [L.DOMAIN, VDOMAIN]


def _dig(*args):
    return [x for x in subprocess.run(["dig", "@127.0.0.1", "+short", *args], capture_output=True,
                                      text=True, timeout=30, check=True).stdout.split("\n") if x]


def _cli(*args, input=None):
    return subprocess.run(["homemail-user", *args], input=input, capture_output=True, text=True,
                          timeout=60)


class _OutsideIMAP(imaplib.IMAP4_SSL):
    """IMAPS from another loopback address than the host's own (not the webmail)."""

    def _create_socket(self, timeout):
        s = socket.create_connection((self.host, self.port), timeout,
                                     source_address=(L.OUTSIDE, 0))
        return self.ssl_context.wrap_socket(s, server_hostname=self.host)


def _imap_login(user, password, outside=False):
    cls = _OutsideIMAP if outside else imaplib.IMAP4_SSL
    m = cls(L.HOST, 993, ssl_context=L.tls_context(), timeout=30)
    try:
        m.login(user, password)
    except imaplib.IMAP4.error as ex:
        return str(ex)
    m.logout()
    return "OK"


@pytest.mark.parametrize("domain", DOMAINS)
def test_srv_and_autoconfig_records(domain):
    for svc, port in (("_submission._tcp", 587), ("_imaps._tcp", 993), ("_pop3s._tcp", 995)):
        assert _dig("SRV", "%s.%s" % (svc, domain)) == ["0 1 %d %s." % (port, L.HOST)], svc
    addr = _dig("A", L.HOST)
    for n in ("autoconfig", "autodiscover"):
        assert _dig("A", "%s.%s" % (n, domain)) == addr, n
    assert "10 %s." % L.HOST in _dig("MX", domain)


def _https(name, method, path, body=None):
    addr = socket.gethostbyname(L.HOST)
    ctx = L.tls_context()                      # the certificate must carry this name

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            s = socket.create_connection((addr, 443), 30)
            self.sock = ctx.wrap_socket(s, server_hostname=name)

    c = Conn(name, 443, timeout=30, context=ctx)
    c.request(method, path, body=body, headers={"Content-Type": "text/xml"} if body else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


@pytest.mark.parametrize("domain", DOMAINS)
def test_autoconfig_and_autodiscover_over_https(domain):
    st, data = _https("autoconfig." + domain, "GET", "/mail/config-v1.1.xml?emailaddress=x%40" + domain)
    assert st == 200, (st, data[:300])
    prov = ET.fromstring(data).find("emailProvider")
    assert prov.findtext("domain") == domain
    imap = [s for s in prov.findall("incomingServer") if s.get("type") == "imap"][0]
    assert (imap.findtext("hostname"), imap.findtext("port")) == (L.HOST, "993")
    st, data = _https("autodiscover." + domain, "POST", "/autodiscover/autodiscover.xml",
                      body="<Autodiscover><Request><EMailAddress>x@%s</EMailAddress></Request>"
                           "</Autodiscover>" % domain)
    assert st == 200 and (b"<Server>%s</Server>" % L.HOST.encode()) in data, (st, data[:300])


def test_mail_to_the_virtual_account_and_the_alias():
    s1, m1 = L.make_message(ANA)
    L.submit("roberto", [ANA], m1)
    s2, m2 = L.make_message(ALIAS)
    L.submit("maria", [ALIAS], m2, port=465)
    L.assert_intact(L.imap_find(ANA, s1), m1)
    L.assert_intact(L.imap_find(ANA, s2), m2)
    # an unknown address of the new domain is refused at RCPT
    import smtplib
    with smtplib.SMTP(L.HOST, 25, timeout=30, source_address=(L.OUTSIDE, 0)) as s:
        s.starttls(context=L.tls_context())
        s.ehlo("outside.example")
        s.mail("someone@outside.example")
        assert s.rcpt("nadie@" + VDOMAIN)[0] == 550


def _quota_kb():
    m = imaplib.IMAP4_SSL(L.HOST, 993, ssl_context=L.tls_context(), timeout=30)
    try:
        m.login(ANA, L.password(ANA))
        typ, data = m.getquotaroot("INBOX")
    finally:
        m.logout()
    assert typ == "OK", data
    got = re.search(rb"STORAGE \d+ (\d+)", b" ".join(x for x in data[1] if x))
    return int(got.group(1)) if got else None


def _roundcube_login(d, user, password):
    d.set_page_load_timeout(120)
    d.get("https://%s/roundcube/" % L.HOST)
    wait = WebDriverWait(d, 120)
    wait.until(EC.presence_of_element_located((By.ID, "rcmloginuser"))).send_keys(user)
    d.find_element(By.ID, "rcmloginpwd").send_keys(password)
    d.find_element(By.ID, "rcmloginsubmit").click()
    return wait


def test_quota_change_seen_over_imap_and_in_roundcube():
    assert _quota_kb() == 200 * 1024
    d = _browser()
    try:
        r = _cli("quota", ANA, "300M")
        assert r.returncode == 0, r.stderr
        assert _quota_kb() == 300 * 1024
        wait = _roundcube_login(d, ANA, L.password(ANA))
        # Roundcube's quota display is fed by its IMAP GETQUOTAROOT (KB)
        wait.until(lambda drv: drv.execute_script(
            "return (window.rcmail && rcmail.env.quota_content) ?"
            " String(rcmail.env.quota_content.total) : '';") == str(300 * 1024))
    finally:
        d.save_screenshot(os.path.join(L.ARTIFACTS, "roundcube-quota.png"))
        d.quit()
        assert _cli("quota", ANA, QUOTA).returncode == 0
    assert _quota_kb() == 200 * 1024


def test_expired_password_changed_through_roundcube():
    old = L.password(ANA)
    new = "Lab-%s-Z9" % secrets.token_hex(5)
    r = _cli("passwd", "--expire", ANA)
    assert r.returncode == 0, r.stderr
    d = _browser()
    try:
        why = _imap_login(ANA, old, outside=True)
        assert "Password expired" in why, why
        wait = _roundcube_login(d, ANA, old)
        # straight to the change form, with the password plugin's expiry notice
        wait.until(EC.presence_of_element_located((By.ID, "newpasswd")))
        assert "plugin.password" in d.current_url, d.current_url
        d.find_element(By.ID, "curpasswd").send_keys(old)
        d.find_element(By.ID, "newpasswd").send_keys(new)
        d.find_element(By.ID, "confpasswd").send_keys(new)
        d.execute_script("rcmail.command('plugin.password-save')")
        deadline = time.time() + 60
        while _imap_login(ANA, new, outside=True) != "OK":
            assert time.time() < deadline, "the new password never worked over IMAP"
            time.sleep(1)
        assert _imap_login(ANA, old) != "OK"
        assert "expired" not in _cli("show", ANA).stdout
    finally:
        d.save_screenshot(os.path.join(L.ARTIFACTS, "roundcube-password.png"))
        d.quit()
        # back to the credentials file's password (which clears any expiry)
        _cli("passwd", ANA, "--password-stdin", input=old + "\n")
    assert _imap_login(ANA, old) == "OK"
