"""test_dane.py — outgoing DANE (RFC 7672) through the package's Exim
configuration, against a destination Exim in another network namespace on
port 25, with DNS signed and validated (hm_dnssec.SignedWorld).

What it guards:
  * the validating resolver sets AD for the signed zones (delv verifies the
    TLSA record from the trust anchor on its own), not for unsigned ones;
  * Debian's remote_smtp with a validated TLSA record that matches the
    destination's key: delivered, Exim logs CV=dane;
  * a validated TLSA record that does not match: deferred, nothing arrives
    (no fallback to unauthenticated TLS or clear text);
  * an unsigned zone: delivered with opportunistic TLS (no DANE) — unless
    the domain is in HOMEMAIL_DANE_REQUIRE_DOMAINS (router/190_homemail_dane,
    transport/35_homemail_remote_smtp_dane, hosts_require_dane): not sent,
    bounced ("lookup not DNSSEC": Exim makes it a permanent failure);
  * a required domain whose TLSA validates: delivered with CV=dane.
"""
import re
import subprocess

import hm_dnssec
import hmtest

DOMAINS = ("dane.test", "wrong.test", "plain.test", "required.test")


class Port25Exim(hmtest.Exim):
    """The harness's small Exim, listening on port 25 of its namespace
    (Exim looks TLSA up for the port it connects to: _25._tcp)."""

    def _setup_dirs(self, host=None):
        super()._setup_dirs(host)
        self.smtp_port = 25


def sending_exim(host, macros):
    """The package's Exim in `host`, routing non-local mail through Debian's
    dnslookup router (the harness's outbox router is taken out; its start-up
    probe router stays)."""
    e = hmtest.PackageExim(host=host, local_scan=False, user_check=False, macros=macros)
    cd = e.w + "/confdir"
    probe = hmtest.PKG_EXIM_OUTBOX.format(probe_sender=e.probe_sender)
    with open(cd + "/conf.d/router/050_hmtest_outbox", "w") as f:
        f.write(probe[probe.index("hmtest_probe:"):])
    r = subprocess.run(["update-exim4.conf", "-d", cd, "-o", e.conf_path],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return e


def delivery_lines(exim, rcpt):
    """Exim's main log lines about rcpt (=> delivered, == deferred, ** failed)."""
    return [ln for ln in exim.mainlog().splitlines()
            if re.search(r" (=>|==|\*\*) " + re.escape(rcpt) + r"\b", ln)]


def test_dane_outgoing():
    crt, _ = hmtest.test_cert()
    good = hm_dnssec.spki_sha256(crt)
    wrong = format(int(good, 16) ^ 1, "064x")     # one bit off
    with hm_dnssec.SignedWorld() as w:
        dest = w.add_host("dest")
        sender = w.add_host("sender")
        mx = ["@ IN MX 10 mx", f"mx IN A {dest.addr}"]
        w.start_dns({"dane.test": mx + [f"_25._tcp.mx IN TLSA 3 1 1 {good}"],
                     "wrong.test": mx + [f"_25._tcp.mx IN TLSA 3 1 1 {wrong}"],
                     "plain.test": mx,
                     "required.test": mx},
                    signed=("dane.test", "wrong.test"))
        w.start_resolver()

        # the resolver validates the signed zones and only those
        a = w.ask("_25._tcp.mx.dane.test", "TLSA")
        assert "NOERROR" in a and re.search(r"flags:[^;]* ad[ ;]", a), a
        a = w.ask("mx.plain.test", "A")
        assert "NOERROR" in a and not re.search(r"flags:[^;]* ad[ ;]", a), a
        # delv checks the chain itself, from the anchor file
        r = subprocess.run(["delv", "@" + w.resolver_addr, "-a", w.anchor_file(),
                            "+root=dane.test", "_25._tcp.mx.dane.test", "TLSA"],
                           capture_output=True, text=True)
        assert "; fully validated" in r.stdout and good.upper() in r.stdout.upper().replace(" ", ""), \
            r.stdout + r.stderr

        d = Port25Exim(host=dest, transport_command="/bin/true",
                       rcpt_acl="  accept  domains = " + " : ".join(DOMAINS)).start()
        s = sending_exim(sender, "HOMEMAIL_DANE_REQUIRE_DOMAINS = dane.test : required.test")
        s.start()
        try:
            for dom in DOMAINS:
                rcpt = f"user@{dom}"
                msg = hmtest.make_message(subject=f"dane {dom}", sender="roberto@home.com.bo",
                                          to=rcpt)
                r = s.exim("-odi", "-f", "roberto@home.com.bo", rcpt, input=msg, text=False)
                assert r.returncode == 0, r
            arrived = {dom: any(f"Subject: dane {dom}".encode() in m
                                for m in d.outbox_messages()) for dom in DOMAINS}
            lines = {dom: delivery_lines(s, f"user@{dom}") for dom in DOMAINS}
            info = f"{lines}\n{s.log_tail(30)}"
            # valid TLSA, DANE required: delivered, authenticated by DANE
            assert arrived["dane.test"] and any(" => " in ln and "CV=dane" in ln
                                                and "T=homemail_remote_smtp_dane" in ln
                                                for ln in lines["dane.test"]), info
            # validated TLSA that does not match: deferred, nothing arrived,
            # through Debian's remote_smtp (opportunistic DANE, no fallback)
            assert not arrived["wrong.test"] and lines["wrong.test"] and \
                all(" == " in ln for ln in lines["wrong.test"]), info
            # unsigned zone, no policy: opportunistic TLS, delivered, no DANE
            assert arrived["plain.test"] and any(" => " in ln and "T=remote_smtp" in ln
                                                 and "CV=dane" not in ln
                                                 for ln in lines["plain.test"]), info
            # unsigned zone, DANE required: refused for good (Exim: the MX
            # lookup is not DNSSEC-secure; a bounce, never a clear-text send)
            assert not arrived["required.test"] and any(
                " ** " in ln and "T=homemail_remote_smtp_dane" in ln and "not DNSSEC" in ln
                for ln in lines["required.test"]), info
        finally:
            s.stop()
            d.stop()
