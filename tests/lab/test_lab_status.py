"""homemail-status on the provisioned lab: every check ok (exit 0) — the
services, TLS of every listener, the zone as the lab's bind9 answers it
(with the reverse zone's PTR for the HELO name), the MTA-STS policy fetched
over HTTPS and checked against the MX, Exim's queue and
local_scan, Dovecot's auth module, disk, versions — and homemail-report
reads the lab's logs.  The cron job and status.conf are the playbook's."""
import json
import os
import subprocess
import time

import labconf as L


def test_status_all_ok():
    t0 = time.monotonic()
    r = subprocess.run(["/usr/sbin/homemail-status", "--json"], capture_output=True, text=True,
                       timeout=300)
    elapsed = time.monotonic() - t0
    doc = json.loads(r.stdout)
    bad = [c for c in doc["checks"] if c["verdict"] not in ("ok", "skipped")]
    assert (r.returncode, bad) == (0, []), json.dumps(bad, indent=1)
    names = {c["check"] for c in doc["checks"]}
    for want in ("service smtp/25", "tls smtps/465", "tls imaps/993", "tls https/443",
                 "homemail local_scan", "homemail auth module", "exim queue",
                 "dovecot quota", "dns MX " + L.DOMAIN,
                 "mta-sts policy " + L.DOMAIN):
        assert want in names, want
    assert any(n.startswith("dns PTR ") for n in names), names
    with open(os.path.join(L.ARTIFACTS, "status.json"), "w") as f:
        json.dump(dict(doc, wall_seconds=round(elapsed, 3)), f, indent=1)
    print(f"homemail-status: {len(doc['checks'])} checks in {elapsed:.2f} s")


def test_cron_and_report():
    cron = open("/etc/cron.d/homemail-status").read()
    assert "homemail-status --cron" in cron and "homemail-report --mail" in cron
    r = subprocess.run(["/usr/sbin/homemail-report", "--day", "today"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r
    assert "received" in r.stdout and "REFUSED" in r.stdout
