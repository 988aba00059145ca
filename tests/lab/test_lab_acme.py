"""ACME, DNSSEC and DANE in the running lab (docs/certificates.md).

  * the certificate every TLS listener serves (25, 465, 587, 993, 995, 4190,
    443) is the one certbot got from the lab's pebble, and verifies against
    the root the deploy hook stored (tls_ca);
  * it carries exactly the names the lab serves (tls_names: mail_hostname,
    and mta-sts., autoconfig., autodiscover. of home.com.bo and
    ventas.com.bo), and Apache's port 443 serves it, verified for each name
    (SNI, openssl s_client -verify_hostname against tls_ca);
  * a forced renewal (certbot renew, as cron runs it) runs the deploy hook:
    new certificate installed, exim4/dovecot/apache2 reloaded, every port
    serves it; the key stays (--reuse-key), so the TLSA record still matches;
  * bind9 signs home.com.bo; the validating resolver (127.0.0.53, what
    resolv.conf names first, with trust-ad) answers with the AD bit; delv
    validates the TLSA record from the zone's key on its own; the TLSA
    record is the SPKI SHA-256 of the key port 25 serves.
"""
import glob
import hashlib
import os
import re
import ssl
import subprocess

import labconf as L

PORTS = (25, 465, 587, 993, 995, 4190, 443)
# The inventory's mail domains and every name they are served by (tls role's
# tls_names, docs/certificates.md "Names").
MAIL_DOMAINS = (L.DOMAIN, "ventas.com.bo")
SERVED_NAMES = sorted([L.HOST] + [p + d for d in MAIL_DOMAINS
                                  for p in ("mta-sts.", "autoconfig.", "autodiscover.")])
LINEAGE = "/etc/letsencrypt/live/homemail"
RESOLVER = "127.0.0.53"
HOOK_LOG = "/var/log/homemail-acme.log"
PEBBLE_CA = "/etc/homemail/pebble/listener.pem"


def _run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def _served_der(port):
    """DER of the certificate a listener serves (STARTTLS where the protocol
    has it), verified against the lab's CA file for the lab's name."""
    starttls = {25: "smtp", 587: "smtp", 4190: "sieve"}.get(port)
    argv = ["openssl", "s_client", "-connect", f"{L.HOST}:{port}", "-servername", L.HOST,
            "-verify_return_error", "-CAfile", L.CA, "-verify_hostname", L.HOST]
    if starttls:
        argv += ["-starttls", starttls]
    r = subprocess.run(argv, input="", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Verify return code: 0 (ok)" in r.stdout, (port, r.stdout[-800:],
                                                                             r.stderr[-800:])
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    return ssl.PEM_cert_to_DER_cert(pem.group(0))


def _issuer(pem_file):
    return _run(["openssl", "x509", "-in", pem_file, "-noout", "-issuer"], check=True).stdout


def _spki_sha256(pem_file):
    pub = subprocess.run(["openssl", "x509", "-in", pem_file, "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    return hashlib.sha256(der).hexdigest()


def _tlsa():
    out = _run(["dig", "+dnssec", "+tries=2", "+time=3", "@" + RESOLVER,
                "_25._tcp." + L.HOST, "TLSA"]).stdout
    recs = ["".join(m.group(1).split()).lower()
            for m in re.finditer(r"\tTLSA\t3 1 1 ([0-9A-Fa-f ]+)$", out, re.M)]
    return out, recs


def test_acme_certificate_served_on_every_port():
    assert "Pebble" in _issuer(L.CERT), _issuer(L.CERT)
    with open(os.path.join(LINEAGE, "fullchain.pem"), encoding="ascii") as f:
        assert f.read() == open(L.CERT, encoding="ascii").read(), "served chain is not certbot's"
    for port in PORTS:
        assert _served_der(port) == L.leaf_der(), f"port {port} serves another certificate"


def test_certificate_carries_every_served_name():
    san = _run(["openssl", "x509", "-in", L.CERT, "-noout", "-ext", "subjectAltName"],
               check=True).stdout
    assert sorted(re.findall(r"DNS:([^,\s]+)", san)) == SERVED_NAMES, san
    for name in SERVED_NAMES:
        r = _run(["openssl", "s_client", "-connect", f"{L.HOST}:443", "-servername", name,
                  "-verify_return_error", "-CAfile", L.CA, "-verify_hostname", name],
                 input="")
        assert r.returncode == 0 and "Verify return code: 0 (ok)" in r.stdout, \
            (name, r.stdout[-800:], r.stderr[-800:])


def test_renewal_runs_the_deploy_hook_and_keeps_the_tlsa_valid():
    before = L.leaf_der()
    spki = _spki_sha256(L.CERT)
    log_size = os.path.getsize(HOOK_LOG) if os.path.exists(HOOK_LOG) else 0
    r = subprocess.run(["certbot", "renew", "--force-renewal", "--cert-name", "homemail",
                        "--no-random-sleep-on-renew"],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, REQUESTS_CA_BUNDLE=PEBBLE_CA))
    assert r.returncode == 0, r.stdout + r.stderr
    after = L.leaf_der()
    assert after != before, "the renewal did not install a new certificate"
    with open(HOOK_LOG, encoding="utf-8") as f:
        f.seek(log_size)
        log = f.read()
    assert "reloaded: /etc/init.d/exim4 reload >/dev/null && doveadm reload && apache2ctl graceful" \
        in log, log
    assert "served on: 25/smtp 465 587/smtp 993 995 4190/sieve 443" in log, log
    for port in PORTS:
        assert _served_der(port) == after, f"port {port} still serves the old certificate"
    # --reuse-key: same key, the published TLSA record still matches
    assert _spki_sha256(L.CERT) == spki
    _, recs = _tlsa()
    assert spki in recs, recs


def test_zone_signed_and_validated_by_the_resolver():
    auth = _run(["dig", "+dnssec", "@127.0.0.1", L.DOMAIN, "SOA"]).stdout
    assert re.search(r"\tRRSIG\tSOA ", auth), auth
    for name, rtype in ((L.DOMAIN, "MX"), (L.HOST, "A"), ("_25._tcp." + L.HOST, "TLSA")):
        out = _run(["dig", "+dnssec", "+tries=2", "+time=3", "@" + RESOLVER, name, rtype]).stdout
        assert "status: NOERROR" in out and re.search(r"flags:[^;]* ad[ ;]", out), out


def test_resolver_answers_for_every_mail_domain_validated():
    # the mail daemons ask this resolver for SPF, DKIM and DMARC of our own
    # domains too (mail between them, homemail-status): the extra domain of
    # the inventory must resolve there, validated, not only mail_domain
    for name, rtype in (("ventas.com.bo", "MX"), ("_dmarc.ventas.com.bo", "TXT"),
                        ("ventas.com.bo", "TXT")):
        out = _run(["dig", "+dnssec", "+tries=2", "+time=3", "@" + RESOLVER, name, rtype]).stdout
        assert "status: NOERROR" in out and re.search(r"flags:[^;]* ad[ ;]", out), out
        assert re.search(r"ANSWER: [1-9]", out), out


def test_delv_validates_the_tlsa_record_from_the_zone_key():
    keys = glob.glob(f"/var/lib/bind/keys/K{L.DOMAIN}.+*.key")
    anchors = ""
    for k in keys:
        for line in open(k, encoding="ascii"):
            m = re.search(r"IN\s+DNSKEY\s+257\s+(\d+)\s+(\d+)\s+(.+)$", line)
            if m and not line.startswith(";"):
                anchors += (f'  "{L.DOMAIN}." static-key 257 {m.group(1)} {m.group(2)} '
                            f'"{"".join(m.group(3).split())}";\n')
    assert anchors, f"no key-signing key in {keys}"
    path = os.path.join(L.ARTIFACTS, "anchors.conf")
    with open(path, "w", encoding="ascii") as f:
        f.write("trust-anchors {\n" + anchors + "};\n")
    r = _run(["delv", "@" + RESOLVER, "-a", path, "+root=" + L.DOMAIN,
              "_25._tcp." + L.HOST, "TLSA"])
    assert "; fully validated" in r.stdout, r.stdout + r.stderr


def test_tlsa_matches_the_key_served_on_25():
    out, recs = _tlsa()
    assert recs, out
    der = _served_der(25)
    pem = ssl.DER_cert_to_PEM_cert(der)
    path = os.path.join(L.ARTIFACTS, "served-25.pem")
    with open(path, "w", encoding="ascii") as f:
        f.write(pem)
    assert _spki_sha256(path) in recs, (recs, out)


def test_resolv_conf_names_the_validating_resolver_reversibly():
    with open("/etc/resolv.conf", encoding="ascii") as f:
        conf = f.read()
    servers = re.findall(r"^nameserver\s+(\S+)", conf, re.M)
    assert servers and servers[0] == RESOLVER, conf
    assert re.search(r"^options\s.*\btrust-ad\b", conf, re.M), conf
    assert os.path.exists("/etc/resolv.conf.homemail-orig")
    # a client reading resolv.conf (as Exim's resolver library does) gets AD
    out = _run(["dig", "+dnssec", "+tries=2", "+time=3", L.DOMAIN, "MX"]).stdout
    assert "status: NOERROR" in out and re.search(r"flags:[^;]* ad[ ;]", out), out
