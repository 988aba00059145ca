"""Roundcube in the running lab, driven by Debian's chromium (headless) through
chromium-driver and python3-selenium: log in and see the delivered message.
The screenshot is kept in build/lab/roundcube.png."""
import os

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import labconf as L


def _browser():
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,900", "--lang=en-US"):
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
        d.get("http://%s/roundcube/" % L.HOST)
        wait = WebDriverWait(d, 120)
        wait.until(EC.presence_of_element_located((By.ID, "rcmloginuser"))).send_keys("roberto")
        d.find_element(By.ID, "rcmloginpwd").send_keys(L.password("roberto"))
        d.find_element(By.ID, "rcmloginsubmit").click()
        try:
            wait.until(EC.presence_of_element_located(
                (By.XPATH, "//table[@id='messagelist']//*[contains(text(), '%s')]" % subject)))
        finally:
            d.save_screenshot(shot)
        assert "roundcube" in d.current_url and "_task=mail" in d.current_url, d.current_url
    finally:
        d.quit()
    assert os.path.getsize(shot) > 10000
