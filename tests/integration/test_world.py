"""test_world.py — the test-world harness (hm_world.py) does what the tests
that build on it rely on: namespaces reachable from the root namespace at
their own addresses, a DNS server that answers for the test's zones and
refuses the rest at once, each namespace resolving through it (the
resolv.conf Exim and the DNS libraries read), an Exim running inside a
namespace, and nothing left behind."""
import os
import socket
import subprocess

import hm_world
import hmtest


def test_world_dns_hosts_and_exim():
    with hm_world.World() as w:
        a = w.add_host("a")
        w.start_dns({"outside.test": ["@ IN MX 10 mx", f"mx IN A {a.addr}",
                                      '@ IN TXT "v=spf1 ip4:198.18.0.0/15 -all"']})
        b = w.add_host("b")
        # the root namespace asks the server directly
        assert w.dig("mx.outside.test").strip() == a.addr
        assert "v=spf1" in w.dig("outside.test", "TXT")
        # every host (before and after start_dns) resolves through it
        for h in (a, b):
            r = h.run(["getent", "hosts", "mx.outside.test"], text=True)
            assert r.returncode == 0 and r.stdout.split()[0] == a.addr, r
        # names outside the test's zones fail at once (REFUSED), no timeout
        r = a.run(["dig", "+tries=1", "+time=2", "example.com", "A"], text=True)
        assert "REFUSED" in r.stdout, r.stdout
        # a zone change is served after set_zone
        w.set_zone("outside.test", ["@ IN MX 10 mx", f"mx IN A {b.addr}"])
        assert w.dig("mx.outside.test").strip() == b.addr
        # an Exim inside host a accepts mail at a's address (its start-up probe)
        e = hmtest.Exim(host=a, transport_command="/bin/true").start()
        try:
            with socket.create_connection((a.addr, e.smtp_port), timeout=5) as s:
                assert s.recv(100).startswith(b"220")
        finally:
            e.stop()
        # the package's configuration runs inside a host too
        pe = hmtest.PackageExim(host=b, local_scan=False, user_check=False).start()
        try:
            with socket.create_connection((b.addr, pe.smtp_port), timeout=5) as s:
                assert s.recv(100).startswith(b"220")
        finally:
            pe.stop()
        ns = [h.ns for h in w.hosts.values()]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for n in ns:
        assert n not in listed, f"{n} left behind"
        assert not os.path.exists(os.path.join(hm_world.NETNS_ETC, n))
    assert w.bridge not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
