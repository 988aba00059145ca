"""Roundcube in the running lab, driven by Debian's chromium (headless) through
chromium-driver and python3-selenium: the plain-HTTP address leads the browser
to HTTPS, the login goes over HTTPS (the lab certificate, pinned by its key,
is the only one the browser accepts besides the system's), the delivered
message shows. The screenshot is kept in build/lab/roundcube.png."""
import base64
import hashlib
import os
import subprocess

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import labconf as L


def _lab_spki_sha256():
    """base64 SHA-256 of the lab certificate's public key (Chromium's pin format)."""
    pub = subprocess.run(["openssl", "x509", "-in", L.CERT, "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _browser():
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    # Trust exactly the lab certificate's key (chromedriver gives Chromium a
    # --user-data-dir, which this switch needs); any other certificate error
    # still stops the page.
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,900", "--lang=en-US",
              "--ignore-certificate-errors-spki-list=" + _lab_spki_sha256()):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def test_roundcube_login_shows_the_delivered_message():
    rcpt = "roberto@" + L.DOMAIN
    subject, msg = L.make_message(rcpt, subject="Roundcube " + L.make_message(rcpt)[0])
    L.submit("maria", [rcpt], msg, port=465)
    L.imap_find("roberto", subject)              # delivered before the browser looks
    shot = os.path.join(L.ARTIFACTS, "roundcube.png")
    d = _browser()
    try:
        d.set_page_load_timeout(120)
        d.get("http://%s/roundcube/" % L.HOST)       # the old address: redirected
        wait = WebDriverWait(d, 120)
        wait.until(EC.presence_of_element_located((By.ID, "rcmloginuser"))).send_keys("roberto")
        assert d.current_url.startswith("https://%s/roundcube/" % L.HOST), d.current_url
        assert d.execute_script("return window.isSecureContext") is True
        d.find_element(By.ID, "rcmloginpwd").send_keys(L.password("roberto"))
        d.find_element(By.ID, "rcmloginsubmit").click()
        try:
            wait.until(EC.presence_of_element_located(
                (By.XPATH, "//table[@id='messagelist']//*[contains(text(), '%s')]" % subject)))
        finally:
            d.save_screenshot(shot)
        assert d.current_url.startswith("https://%s/roundcube/" % L.HOST), d.current_url
        assert "_task=mail" in d.current_url, d.current_url
        cookies = {c["name"]: c for c in d.get_cookies()}
        auth = cookies.get("roundcube_sessauth")
        assert auth and auth["secure"] and auth["httpOnly"] and auth.get("sameSite") == "Strict", cookies
    finally:
        d.quit()
    assert os.path.getsize(shot) > 10000
