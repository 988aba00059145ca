"""Clients configure themselves (issue 16): the playbook's autoconfig site
(ansible/roles/webmail/templates/homemail-autoconfig.conf.j2) and documents
(autoconfig.xml.j2, autodiscover.xml.j2), rendered with Jinja2 for two
domains and served by a private Apache (Debian's apache2, own config, a
free port on 127.0.0.1, a certificate carrying the autoconfig names).

Guards: Thunderbird's GET of autoconfig.<domain>/mail/config-v1.1.xml and
Outlook's POST of autodiscover.<domain>/autodiscover/autodiscover.xml answer
well-formed XML naming the mail host, the TLS ports and the login with the
full address, for every domain, over HTTPS with a certificate valid for
that name; nothing else is served on those names.  The zone records
(SRV, autoconfig/autodiscover) are rendered and checked with
named-checkzone (bind9-utils); the lab probes them live.
"""
import http.client
import os
import re
import socket
import ssl
import subprocess
import xml.etree.ElementTree as ET

import jinja2
import pytest

import hmtest

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ansible", "roles")
TEMPLATES = os.path.join(ROLES, "webmail", "templates")
DOMAINS = ["home.com.bo", "ventas.com.bo"]
MAILHOST = "mail.home.com.bo"
TB = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


def render(path, **v):
    d, n = os.path.split(path)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(d), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["bool"] = bool          # the one Ansible filter the templates use
    return env.get_template(n).render(**v)


@pytest.fixture(scope="module")
def site():
    w = hmtest._workdir("autoconfig")
    os.chmod(w, 0o755)
    names = [MAILHOST] + [p + d for d in DOMAINS for p in ("autoconfig.", "autodiscover.")]
    crt, key = os.path.join(w, "cert.pem"), os.path.join(w, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
                    "-subj", "/CN=" + MAILHOST, "-addext",
                    "subjectAltName=" + ",".join("DNS:" + n for n in names),
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    root = os.path.join(w, "www")
    v = dict(mail_hostname=MAILHOST, autoconfig_root=root, autoconfig_domains=DOMAINS,
             tls_cert=crt, tls_key=key, webmail_hsts_max_age=31536000,
             ansible_managed="test")
    for d in DOMAINS:
        os.makedirs(os.path.join(root, d), mode=0o755)
        for tpl, out in (("autoconfig.xml.j2", "config-v1.1.xml"),
                         ("autodiscover.xml.j2", "autodiscover.xml")):
            with open(os.path.join(root, d, out), "w") as f:
                f.write(render(os.path.join(TEMPLATES, tpl), item=d, **v))
        with open(os.path.join(root, d, "secret.txt"), "w") as f:
            f.write("not served\n")
    os.chmod(root, 0o755)
    port = hmtest.free_port()
    mods = "/usr/lib/apache2/modules"
    conf = os.path.join(w, "httpd.conf")
    with open(conf, "w") as f:
        f.write(f"""ServerRoot {w}
ServerName {MAILHOST}
PidFile {w}/httpd.pid
Mutex file:{w}
DefaultRuntimeDir {w}
User www-data
Group www-data
Listen 127.0.0.1:{port} https
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule alias_module {mods}/mod_alias.so
LoadModule mime_module {mods}/mod_mime.so
LoadModule headers_module {mods}/mod_headers.so
LoadModule setenvif_module {mods}/mod_setenvif.so
LoadModule socache_shmcb_module {mods}/mod_socache_shmcb.so
LoadModule ssl_module {mods}/mod_ssl.so
ErrorLog {w}/error.log
TypesConfig /etc/mime.types
LogFormat "%h %l %u %t \\"%r\\" %>s %b" combined
<Directory />
    Require all denied
</Directory>
Include {w}/site.conf
""")
    with open(os.path.join(w, "site.conf"), "w") as f:
        f.write(render(os.path.join(TEMPLATES, "homemail-autoconfig.conf.j2"), **v)
                .replace("*:443", f"*:{port}"))
    env = dict(os.environ, APACHE_LOG_DIR=w)
    proc = subprocess.Popen(["/usr/sbin/apache2", "-f", conf, "-DFOREGROUND"], env=env,
                            stdout=open(os.path.join(w, "stdout"), "w"), stderr=subprocess.STDOUT)
    def up():
        if proc.poll() is not None:
            raise RuntimeError("apache2 exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    try:
        hmtest.wait_for(up, 20, what="the private apache2")
    except Exception:
        proc.kill()
        raise RuntimeError(open(os.path.join(w, "stdout")).read()
                           + open(os.path.join(w, "error.log")).read())
    yield port, crt
    proc.terminate()
    proc.wait(20)


def request(site, name, method, path, body=None, headers=None):
    port, crt = site
    ctx = ssl.create_default_context(cafile=crt)      # verifies the name too

    class Conn(http.client.HTTPSConnection):
        def connect(self):
            s = socket.create_connection(("127.0.0.1", port), 20)
            self.sock = ctx.wrap_socket(s, server_hostname=name)

    c = Conn(name, port, context=ctx, timeout=20)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


@pytest.mark.parametrize("domain", DOMAINS)
def test_thunderbird_autoconfig(site, domain):
    st, ctype, data = request(site, "autoconfig." + domain, "GET",
                              "/mail/config-v1.1.xml?emailaddress=ana%40" + domain)
    assert st == 200 and ctype.startswith("application/xml"), (st, ctype, data[:200])
    prov = ET.fromstring(data).find("emailProvider")
    assert prov.get("id") == domain and prov.findtext("domain") == domain
    got = {(s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"),
            s.findtext("username"))
           for s in prov.findall("incomingServer") + prov.findall("outgoingServer")}
    assert got == {("imap", MAILHOST, "993", "SSL", "%EMAILADDRESS%"),
                   ("pop3", MAILHOST, "995", "SSL", "%EMAILADDRESS%"),
                   ("smtp", MAILHOST, "587", "STARTTLS", "%EMAILADDRESS%")}, got


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"])
def test_outlook_autodiscover_post(site, domain, path):
    req = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.'
           'com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>ana@'
           + domain + '</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/'
           'exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>'
           '</Request></Autodiscover>')
    st, ctype, data = request(site, "autodiscover." + domain, "POST", path, body=req,
                              headers={"Content-Type": "text/xml"})
    assert st == 200 and ctype.startswith("application/xml"), (st, ctype, data[:200])
    acct = ET.fromstring(data).find(f"{TB}Response/{TB}Account")
    protos = {p.findtext(f"{TB}Type"): (p.findtext(f"{TB}Server"), p.findtext(f"{TB}Port"))
              for p in acct.findall(f"{TB}Protocol")}
    assert protos == {"IMAP": (MAILHOST, "993"), "POP3": (MAILHOST, "995"),
                      "SMTP": (MAILHOST, "587")}, protos


def test_nothing_else_is_served(site):
    for name, method, path in (("autoconfig.ventas.com.bo", "GET", "/secret.txt"),
                               ("autoconfig.ventas.com.bo", "GET", "/"),
                               ("autodiscover.home.com.bo", "PUT", "/autodiscover/autodiscover.xml"),
                               ("autoconfig.home.com.bo", "DELETE", "/mail/config-v1.1.xml")):
        st, _, _ = request(site, name, method, path, body=b"x" if method == "PUT" else None)
        assert st in (403, 405), (name, method, path, st)


def test_zones_carry_srv_and_autoconfig_records(tmp_path):
    d = os.path.join(ROLES, "dns", "templates")
    v = dict(mail_hostname=MAILHOST, mail_address="192.0.2.2", dns_ttl=3600,
             dns_serial=2026120501, ansible_managed="test", dns_tlsa=False,
             mail_domain="home.com.bo", dns_extra_domain="ventas.com.bo",
             # the mail-authentication records the zone also carries (docs/mailauth.md)
             dmarc_policy="quarantine", dmarc_rua="postmaster@home.com.bo",
             mta_sts_id="test1", tlsrpt_rua="postmaster@home.com.bo",
             # each domain its own DKIM keys (the mailauth role's facts),
             # ventas.com.bo its own DMARC policy (inventory override)
             dkim_records=[{"domain": "home.com.bo", "selector": "r1", "k": "rsa", "p": "HOME"}],
             dkim_records_all=[
                 {"domain": "home.com.bo", "selector": "r1", "k": "rsa", "p": "HOME"},
                 {"domain": "ventas.com.bo", "selector": "r1", "k": "rsa", "p": "A" * 300},
                 {"domain": "ventas.com.bo", "selector": "e1", "k": "ed25519", "p": "VENTASED"}],
             mail_extra_domains=[{"name": "ventas.com.bo", "dmarc_policy": "reject"}])
    want = {"home.com.bo": (["r1"], "quarantine"), "ventas.com.bo": (["e1", "r1"], "reject")}
    for dom, tpl in (("home.com.bo", "db.zone.j2"), ("ventas.com.bo", "db.extra-zone.j2")):
        z = tmp_path / ("db." + dom)
        z.write_text(render(os.path.join(d, tpl), **v))
        r = subprocess.run(["named-checkzone", "-D", "-o", "-", dom, str(z)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        recs = {tuple(ln.split()[0:1] + ln.split()[3:]) for ln in r.stdout.splitlines()}
        for svc, port in (("_submission._tcp", 587), ("_imaps._tcp", 993), ("_pop3s._tcp", 995)):
            assert (f"{svc}.{dom}.", "SRV", "0", "1", str(port), MAILHOST + ".") in recs, recs
        for n in ("autoconfig", "autodiscover"):
            assert (f"{n}.{dom}.", "A", "192.0.2.2") in recs, recs
        # mail authentication (docs/mailauth.md): the same records in both zones
        txt = {}
        for ln in r.stdout.splitlines():
            f = ln.split(None, 4)
            if f[3] == "TXT":
                txt.setdefault(f[0], []).append("".join(re.findall(r'"([^"]*)"', f[4])))
        assert txt[dom + "."] == ["v=spf1 mx -all"], txt
        sels, pol = want[dom]
        assert sorted(k.split(".")[0] for k in txt if "._domainkey." in k) == sels, txt
        if dom == "ventas.com.bo":
            assert txt["r1._domainkey.ventas.com.bo."] == ["v=DKIM1; k=rsa; p=" + "A" * 300]
            assert txt["e1._domainkey.ventas.com.bo."] == ["v=DKIM1; k=ed25519; p=VENTASED"]
        else:       # ventas.com.bo's reports come here: consent (RFC 7489 7.1)
            assert txt["ventas.com.bo._report._dmarc.home.com.bo."] == ["v=DMARC1"], txt
        assert txt[f"_dmarc.{dom}."] == [
            f"v=DMARC1; p={pol}; rua=mailto:postmaster@home.com.bo"], txt
        assert txt[f"_mta-sts.{dom}."] == ["v=STSv1; id=test1"], txt
        assert txt[f"_smtp._tls.{dom}."] == ["v=TLSRPTv1; rua=mailto:postmaster@home.com.bo"], txt
        assert (f"mta-sts.{dom}.", "A", "192.0.2.2") in recs, recs
