"""hm_dnssec.py — a test world (hm_world) whose DNS is signed and validated.

DANE (RFC 7672) and any other DNSSEC-dependent check need two things a
plain hm_world.World lacks:

  * signed zones: the world's authoritative bind9 serves chosen zones signed
    (one ECDSA P-256 key per zone, made once with dnssec-keygen; the zone is
    re-signed with dnssec-signzone at every start_dns/set_zone), the others
    unsigned;
  * a validating resolver: a second bind9, in its own namespace at
    198.18.N.3, recursing only into the world's zones (static-stub zones
    pointing at the authoritative server) and validating them against
    trust anchors for the signed zones (the DS of each zone's key, as
    `trust-anchors { static-ds }`): answers in a signed zone carry the AD
    bit, answers in an unsigned one do not, and a bad signature is SERVFAIL.

Every host's /etc/resolv.conf (hm_world's per-namespace file) names the
resolver with `options trust-ad`, so glibc passes the AD bit on to Exim (the
same setting the lab's resolv.conf gets; docs/certificates.md).  Nothing
leaves the namespaces and the bridge the world created.
"""
import hashlib
import os
import subprocess

import hm_world
import hmtest

RESOLVER_CONF = """\
options {{
  directory "{d}";
  pid-file none;
  listen-on port 53 {{ {addr}; }};
  listen-on-v6 {{ none; }};
  recursion yes;
  allow-query {{ any; }};
  allow-recursion {{ any; }};
  dnssec-validation yes;
  notify no;
}};
controls {{ }};
logging {{
  channel main {{ file "{d}/named.log"; severity info; print-time yes; }};
  category default {{ main; }};
  category dnssec {{ main; }};
}};
trust-anchors {{
{anchors}}};
{zones}
"""


class SignedWorld(hm_world.World):
    """A World with signed zones and a validating resolver (module docstring).

    start_dns(zones, signed=(...)) signs the zones named in `signed`;
    start_resolver() starts the resolver and points every host at it."""

    def __init__(self):
        super().__init__()
        self.signed = set()
        self.keys = {}            # origin -> key file base (K<origin>+013+tag)
        self.resolver = None
        self.resolver_addr = None
        self._resolver_cleanup = False
        self._kdir = os.path.join(self.w, "keys")
        os.makedirs(self._kdir, exist_ok=True)

    def start_dns(self, zones, signed=()):
        self.signed = {o.rstrip(".") for o in signed}
        return super().start_dns(zones)

    def _key(self, origin):
        """The zone's signing key, made on first use (a CSK: KSK flag, signs all)."""
        if origin not in self.keys:
            r = subprocess.run(["dnssec-keygen", "-q", "-K", self._kdir, "-a",
                                "ECDSAP256SHA256", "-f", "KSK", "-n", "ZONE", origin],
                               capture_output=True, text=True, check=True)
            self.keys[origin] = os.path.join(self._kdir, r.stdout.strip())
        return self.keys[origin]

    def _write_named_conf(self):
        super()._write_named_conf()
        conf = os.path.join(self.w, "named.conf")
        text = open(conf).read()
        for origin in self.signed:
            db = os.path.join(self.w, f"db.{origin}")
            key = self._key(origin)
            with open(db, "a") as f:
                f.write(f"$INCLUDE {key}.key\n")
            subprocess.run(["dnssec-signzone", "-q", "-z", "-d", self._kdir, "-o", origin,
                            "-f", db + ".signed",
                            "-K", self._kdir, db, key],
                           capture_output=True, text=True, check=True)
            os.chmod(db + ".signed", 0o644)
            text = text.replace(f'file "{db}";', f'file "{db}.signed";')
        with open(conf, "w") as f:
            f.write(text)

    def ds(self, origin):
        """The DS record line (digest type 2) of a signed zone's key."""
        return subprocess.run(["dnssec-dsfromkey", "-2", self._key(origin) + ".key"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def trust_anchors(self):
        """bind9 `trust-anchors` entries (static-ds) for every signed zone."""
        out = ""
        for origin in sorted(self.signed):
            # "<origin>. IN DS <tag> <alg> <type> <digest>"
            _, _, _, tag, alg, dtype, digest = self.ds(origin).split(None, 6)
            out += f'  "{origin}." static-ds {tag} {alg} {dtype} "{digest.replace(" ", "")}";\n'
        return out

    # -- the validating resolver ------------------------------------------------
    def start_resolver(self):
        """bind9 at 198.18.N.3:53: recursion into the world's zones only,
        DNSSEC validation with the signed zones' anchors; every host (present
        and future) resolves through it, with trust-ad."""
        h = self.hosts.get("resolver") or self.add_host("resolver", addr_index=3)
        self.resolver_addr = h.addr
        d = os.path.join(self.w, "resolver")
        os.makedirs(d, exist_ok=True)
        os.chown(d, 0, os.stat(self.w).st_gid)
        os.chmod(d, 0o775)
        zones = "".join(f'zone "{o}" {{ type static-stub; server-addresses {{ {self.dns_addr}; }}; }};\n'
                        for o in self.zones)
        conf = os.path.join(d, "named.conf")
        with open(conf, "w") as f:
            f.write(RESOLVER_CONF.format(d=d, addr=h.addr, anchors=self.trust_anchors(),
                                         zones=zones))
        log = open(os.path.join(d, "named.stderr"), "w")
        self.resolver = h.popen(["named", "-f", "-u", "bind", "-c", conf],
                                stdout=log, stderr=subprocess.STDOUT)
        if not self._resolver_cleanup:
            hmtest._cleanups.append(self._stop_resolver)
            self._resolver_cleanup = True
        for other in self.hosts.values():
            other.set_resolver(self.resolver_addr)
        first = next(iter(self.zones))
        hmtest.wait_for(lambda: "NOERROR" in self.ask(first, "SOA"), 20, 0.1,
                        "the validating resolver to answer")
        return h

    def set_zone(self, origin, records):
        """Replace a zone (re-signed when signed) and restart the resolver,
        so that no answer it cached (nor one it would synthesise from a
        cached NSEC record, RFC 8198) hides the change."""
        super().set_zone(origin, records)
        if self.resolver is not None:
            self._stop_resolver()
            self.start_resolver()

    def add_host(self, name, addr_index=None):
        h = super().add_host(name, addr_index)
        if self.resolver_addr:
            h.set_resolver(self.resolver_addr)
        return h

    def ask(self, name, rtype="A", dnssec=True):
        """dig through the validating resolver from the root namespace: the
        full answer text (status, flags — `ad` when validated — records)."""
        argv = ["dig", "+tries=1", "+time=2", f"@{self.resolver_addr}", name, rtype]
        if dnssec:
            argv.insert(1, "+dnssec")
        return subprocess.run(argv, capture_output=True, text=True).stdout

    def anchor_file(self):
        """A file of the signed zones' anchors for `delv -a` (trust-anchors)."""
        p = os.path.join(self.w, "anchors.conf")
        with open(p, "w") as f:
            f.write("trust-anchors {\n" + self.trust_anchors() + "};\n")
        return p

    def _stop_resolver(self):
        if self.resolver is not None:
            hmtest._terminate(self.resolver)
            self.resolver = None

    def close(self):
        self._stop_resolver()
        super().close()


def spki_sha256(cert_path):
    """Hex SHA-256 of a certificate's SubjectPublicKeyInfo: the data of a
    TLSA `3 1 1` (DANE-EE, SPKI, SHA2-256) record, RFC 7218/7671."""
    pub = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()

