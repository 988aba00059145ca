"""bind9 in the running lab answers for the zone (dig)."""
import subprocess

import labconf as L


def _dig(*args):
    return subprocess.run(["dig", "@127.0.0.1", "+short", *args], capture_output=True,
                          text=True, timeout=30, check=True).stdout.split("\n")


def test_mx_record():
    assert "10 %s." % L.HOST in _dig("MX", L.DOMAIN)


def test_mail_a_record_is_this_host():
    addrs = [a for a in _dig("A", L.HOST) if a]
    assert addrs, "no A record for " + L.HOST
    with open("/etc/hosts", encoding="ascii") as f:
        hosts = f.read().split("\n")
    assert any(line.split()[:2] == [addrs[0], L.HOST] for line in hosts if line.strip())


def test_soa_and_ns():
    assert _dig("SOA", L.DOMAIN)[0].startswith(L.HOST + ". postmaster." + L.DOMAIN + ".")
    assert L.HOST + "." in _dig("NS", L.DOMAIN)
