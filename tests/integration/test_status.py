"""test_status.py — homemail-status against a live private host (hm_status.py:
the package's Exim and Dovecot, a bind9 with the published zone and its
reverse zone, a tmpfs spool).  First everything is ok (exit 0); then each
fault of issue 19 is planted in turn — a certificate expiring in 5 days, the
MX record removed, a frozen message, the mail spool full, dovecot stopped,
the local_scan module missing — and must be reported by exactly the lines
it breaks, with the right verdict and exit code, and be gone after the fix.
The MTA-STS policy is fetched over HTTPS from mta-sts.<domain> (resolved
by the host's resolver, loopback here): a policy whose mx does not cover
the MX record is a warning in mode testing and an error in mode enforce,
a bad version or max_age and a certificate without the policy host's name
are errors, the good policy is ok.
One host serves the whole sequence (starting it is most of the time)."""
import json
import os
import subprocess
import time

import pytest

import hm_status
import hmtest

STATUS = os.path.join(hmtest.BUILD, "homemail-status")


@pytest.fixture(scope="module")
def host():
    sh = hm_status.StatusHost()
    yield sh
    sh.close()


def not_ok(doc):
    """{check: verdict} of every line that is neither ok nor skipped."""
    return {c["check"]: c["verdict"] for c in doc["checks"]
            if c["verdict"] not in ("ok", "skipped")}


def assert_all_ok(sh):
    rc, doc, err = sh.status()
    assert (rc, not_ok(doc)) == (0, {}), json.dumps(doc, indent=1)
    assert doc["verdict"] == "ok"
    return doc


def assert_fault(sh, expected, rc_expected):
    rc, doc, err = sh.status()
    bad = not_ok(doc)
    assert bad == expected, json.dumps([c for c in doc["checks"] if c["verdict"] != "ok"],
                                       indent=1)
    assert rc == rc_expected, (rc, bad)
    for c in doc["checks"]:
        if c["check"] in expected:
            assert c["fix"], c           # every warning/error says how to fix it
    return doc


def test_all_ok_then_each_fault_reported_and_cleared(host):
    sh = host
    doc = assert_all_ok(sh)
    checks = {c["check"] for c in doc["checks"]}
    # what a live host must be checked for is there (not silently skipped)
    for want in (f"service smtp/{sh.ex.smtp_port}", f"tls smtps/{sh.smtps_port}",
                 f"tls imaps/{sh.dv.imaps_port}", "auth socket auth-exim-master",
                 "dns MX home.com.bo", "dns PTR 192.0.2.25", "dns DKIM s2027",
                 "dns TLSA _25._tcp.mail.home.com.bo", "exim queue", "exim frozen",
                 "homemail local_scan", "dovecot lockouts", "dovecot quota",
                 "homemail auth module", f"disk {sh.spool}", "backup", "homemail versions",
                 "mta-sts policy home.com.bo"):
        assert want in checks, want

    # 1. a certificate expiring in 5 days (same key: TLSA still matches)
    sh.issue_cert(5)
    sh.restart_daemons()
    tls = {f"tls smtp/{sh.ex.smtp_port}", f"tls smtps/{sh.smtps_port}",
           f"tls imaps/{sh.dv.imaps_port}", f"tls pop3s/{sh.dv.pop3s_port}"}
    doc = assert_fault(sh, {c: "error" for c in tls}, 2)
    assert all("expires in 4.9" in c["detail"] or "expires in 5.0" in c["detail"]
               for c in doc["checks"] if c["check"] in tls), doc
    sh.issue_cert(90)
    sh.restart_daemons()
    assert_all_ok(sh)

    # 2. the MX record removed from what the DNS serves
    sh.world.set_zone(hm_status.DOMAIN, [r for r in sh.zone if " MX " not in r])
    assert_fault(sh, {"dns MX home.com.bo": "error", "dns mail route home.com.bo": "error"}, 2)
    sh.world.set_zone(hm_status.DOMAIN, sh.zone)
    assert_all_ok(sh)
    # ... and a PTR that names another host than the HELO name
    sh.world.set_zone(hm_status.REV_ZONE, ["25 IN PTR host25.provider.example."])
    doc = assert_fault(sh, {"dns PTR 192.0.2.25": "error"}, 2)
    assert "host25.provider.example" in json.dumps(doc)
    sh.world.set_zone(hm_status.REV_ZONE, [f"25 IN PTR {hm_status.HOSTNAME}."])
    assert_all_ok(sh)

    # 3. a frozen message
    r = sh.ex.exim("-odq", "-f", "sender@example.org", "someone@example.net",
                   input="Subject: frozen\n\nbody\n")
    assert r.returncode == 0, r
    mid = sh.ex.exim("-bpr").stdout.split()[2]
    assert sh.ex.exim("-Mf", mid).returncode == 0
    doc = assert_fault(sh, {"exim frozen": "warning"}, 1)
    assert mid in json.dumps(doc)
    assert sh.ex.exim("-Mrm", mid).returncode == 0
    assert_all_ok(sh)

    # 3b. deferrals in the last hour: retries skipped because their time
    # has not come are no attempts (one stuck message made dozens of them)
    log = os.path.join(sh.ex.w, "log", "mainlog")
    kept = open(log).read()
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    with open(log, "a") as f:
        for i in range(25):
            f.write(f"{now} 1xZlhV-0003gQ-1{i % 10} == u@home.com.bo R=local_user "
                    "T=homemail defer (-53): Retry time not yet reached\n")
    assert_all_ok(sh)
    with open(log, "a") as f:
        for i in range(25):
            f.write(f"{now} 1xZlhV-0003gQ-1{i % 10} == u@home.com.bo R=local_user "
                    "T=homemail defer (0): Child process of homemail transport returned 75\n")
    doc = assert_fault(sh, {"exim deferrals 1h": "warning"}, 1)
    assert "25 local delivery deferred" in json.dumps(doc), doc
    with open(log, "w") as f:
        f.write(kept)
    assert_all_ok(sh)

    # 4. the mail spool full
    full = os.path.join(sh.spool, "fill")
    subprocess.run(["dd", "if=/dev/zero", f"of={full}", "bs=64k"], capture_output=True)
    assert_fault(sh, {f"disk {sh.spool}": "error"}, 2)
    os.unlink(full)
    assert_all_ok(sh)

    # 5. dovecot stopped: its listeners, its auth sockets, quota and the auth module
    sh.dv.stop()
    expected = {f"service imaps/{sh.dv.imaps_port}": "error",
                f"service pop3s/{sh.dv.pop3s_port}": "error",
                "dovecot quota": "error", "homemail auth module": "error"}
    expected.update({f"auth socket {n}": "error" for n in (
        "auth-client", "auth-userdb", "auth-master", "auth-exim", "auth-exim-master")})
    assert_fault(sh, expected, 2)
    sh.dv.start()
    assert_all_ok(sh)

    # 6. the local_scan module missing
    os.rename(sh.scan_so, sh.scan_so + ".away")
    doc = assert_fault(sh, {"homemail local_scan": "error"}, 2)
    assert "missing" in [c for c in doc["checks"] if c["check"] == "homemail local_scan"][0]["detail"]
    os.rename(sh.scan_so + ".away", sh.scan_so)
    assert_all_ok(sh)
    # ... and present but not loadable: Exim's answer to the probe says so (451)
    os.rename(sh.scan_so, sh.scan_so + ".away")
    with open(sh.scan_so, "wb") as f:
        f.write(b"\x7fELF not really\n")
    doc = assert_fault(sh, {"homemail local_scan": "error"}, 2)
    assert "451" in [c for c in doc["checks"] if c["check"] == "homemail local_scan"][0]["detail"]
    os.replace(sh.scan_so + ".away", sh.scan_so)
    assert_all_ok(sh)


def test_backup_state_and_outputs(host, tmp_path):
    """The backup line reads homemail-backup's state file (age, result);
    the table, --prometheus and --cron say the same as --json."""
    sh = host
    sh.write_backup(time.time() - 30 * 3600, "ok", 1000)
    assert_fault(sh, {"backup": "warning"}, 1)
    sh.write_backup(time.time() - 600, "error", 0, "borg create: borg exit 2: repository locked")
    rc, doc, _ = sh.status()
    assert not_ok(doc) == {"backup": "error"} and rc == 2
    assert "repository locked" in json.dumps(doc)
    prom = tmp_path / "homemail.prom"
    r = subprocess.run([STATUS, "--config", sh.conf, "--prometheus", str(prom)],
                       capture_output=True, text=True, env=sh.env())
    assert r.returncode == 2
    assert "error   backup" in r.stdout and "\033[" not in r.stdout   # no colour off a tty
    text = prom.read_text()
    assert 'homemail_status_check{check="backup"} 2' in text
    assert "homemail_status_worst 2" in text
    assert "homemail_backup_ok 0" in text
    assert f'homemail_tls_cert_expiry_seconds{{listener="smtp/{sh.ex.smtp_port}"}}' in text
    # --cron: silent; mails the postmaster (through the configured sendmail) when not ok
    out = tmp_path / "mail.txt"
    fake = tmp_path / "sendmail"
    fake.write_text(f"#!/bin/sh\ncat > {out}\n")
    fake.chmod(0o755)
    conf = open(sh.conf).read()
    with open(sh.conf, "a") as f:
        f.write(f"sendmail = {fake}\npostmaster = admin@home.com.bo\n")
    try:
        r = subprocess.run([STATUS, "--config", sh.conf, "--cron"], capture_output=True,
                           text=True, env=sh.env())
        assert (r.returncode, r.stdout) == (2, ""), r
        mail = out.read_text()
        assert "To: admin@home.com.bo" in mail and "Subject: homemail-status" in mail
        assert "error   backup" in mail
        sh.write_backup(time.time() - 600, "ok", 1000)
        out.unlink()
        r = subprocess.run([STATUS, "--config", sh.conf, "--cron"], capture_output=True,
                           text=True, env=sh.env())
        assert (r.returncode, r.stdout) == (0, ""), r
        assert not out.exists()          # all ok: no mail
    finally:
        with open(sh.conf, "w") as f:
            f.write(conf)


def test_bad_configuration_and_usage():
    r = subprocess.run([STATUS, "--config", "/nonexistent/status.conf"], capture_output=True,
                       text=True)
    assert r.returncode == 78 and "no such file" in r.stderr
    r = subprocess.run([STATUS, "--frobnicate"], capture_output=True, text=True)
    assert r.returncode == 64 and "usage:" in r.stderr and r.stdout == ""


def test_mta_sts_policy_fetched_and_checked(host):
    sh = host
    label = "mta-sts policy home.com.bo"

    def line():
        return [c for c in sh.status()[1]["checks"] if c["check"] == label][0]
    good = line()
    assert good["verdict"] == "ok" and "STSv1 mode testing" in good["detail"] \
        and "mail.home.com.bo" in good["detail"], good
    # an mx line that does not cover the MX: warning in testing, error in enforce
    sh.write_policy("version: STSv1\r\nmode: testing\r\nmx: mx.otro.example\r\n"
                    "max_age: 604800\r\n")
    doc = assert_fault(sh, {label: "warning"}, 1)
    assert "MX mail.home.com.bo not in the policy's mx" in json.dumps(doc), doc
    sh.write_policy("version: STSv1\nmode: enforce\nmx: *.otro.example\nmax_age: 604800\n")
    assert_fault(sh, {label: "error"}, 2)
    # a wildcard that covers it is fine (RFC 8461 4.1: one leftmost label)
    sh.write_policy("version: STSv1\nmode: enforce\nmx: *.home.com.bo\nmax_age: 604800\n")
    assert_all_ok(sh)
    # not STSv1, max_age beyond a year: errors
    sh.write_policy("version: STSv2\nmode: testing\nmx: mail.home.com.bo\nmax_age: 99999999\n")
    doc = assert_fault(sh, {label: "error"}, 2)
    assert "not STSv1" in json.dumps(doc) and "max_age 99999999" in json.dumps(doc), doc
    # no policy file at all (404)
    os.unlink(os.path.join(sh.sts_root, "mta-sts.txt"))
    doc = assert_fault(sh, {label: "error"}, 2)
    assert "HTTP 404" in json.dumps(doc), doc
    sh.write_policy(sh.GOOD_POLICY)
    assert_all_ok(sh)
    # a certificate that does not name mta-sts.<domain>
    sh.serve_mta_sts(sh.sts_wrong)
    doc = assert_fault(sh, {label: "error"}, 2)
    assert "does not name mta-sts.home.com.bo" in json.dumps(doc), doc
    sh.serve_mta_sts(sh.sts_good)
    assert_all_ok(sh)
