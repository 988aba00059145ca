"""test_acme.py — the ACME flow of the playbook's acme role, offline, against
a private pebble (Debian's RFC 8555 test CA) in a test world
(hm_dnssec.SignedWorld), with the role's own deploy hook
(ansible/roles/acme/files/homemail-acme-deploy).

  * certbot (Debian's) gets a certificate from pebble: HTTP-01 on port 80
    of the mail host's namespace (a plain HTTP server on the webroot),
    pebble resolving through the world's bind9 (-dnsserver), certbot
    trusting pebble's listener through REQUESTS_CA_BUNDLE;
  * the hook refuses the new key while no validated TLSA 3 1 1 record
    names it (publish before switching), and the old certificate stays;
  * once the record is published: installs chain, key and pebble's root
    (fetched from the management port: it changes at every pebble start),
    reloads a private Exim (SIGHUP) and a private Dovecot (doveadm reload),
    and every listener (SMTP STARTTLS, IMAPS, ManageSieve STARTTLS) serves
    the new certificate;
  * `certbot renew --force-renewal` runs the hook from renewal-hooks/deploy:
    a new certificate, the same key (--reuse-key), so the TLSA record holds.
"""
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess

import hm_dnssec
import hmtest

HOOK = os.path.join(hmtest.TOP, "ansible", "roles", "acme", "files", "homemail-acme-deploy")
NAME = "mail.acme.test"


def _spki_of_key(key):
    der = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest()


def _leaf_der(pem_file):
    pem = open(pem_file).read()
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(pem[:pem.index(end) + len(end)])


def _served_imaps(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=NAME) as s:
            return s.getpeercert(binary_form=True)


def test_acme_issue_tlsa_gate_deploy_and_renew():
    with hm_dnssec.SignedWorld() as w:
        ca = w.add_host("ca")
        mail = w.add_host("mail")
        zone = [f"mail IN A {mail.addr}"]
        w.start_dns({"acme.test": zone}, signed=("acme.test",))
        w.start_resolver()
        d = hmtest._workdir("acme")

        # pebble, its HTTPS listener certificate made here (as the playbook does)
        lcert, lkey = os.path.join(d, "listener.pem"), os.path.join(d, "listener.key")
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/CN=test pebble",
                        "-addext", f"subjectAltName=IP:{ca.addr}", "-keyout", lkey, "-out", lcert],
                       check=True, capture_output=True)
        with open(os.path.join(d, "pebble.json"), "w") as f:
            json.dump({"pebble": {"listenAddress": f"{ca.addr}:14000",
                                  "managementListenAddress": f"{ca.addr}:15000",
                                  "certificate": lcert, "privateKey": lkey,
                                  "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "",
                                  "externalAccountBindingRequired": False}}, f)
        pebble = ca.popen(["pebble", "-config", os.path.join(d, "pebble.json"),
                           "-dnsserver", f"{w.dns_addr}:53"],
                          env=dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0"),
                          stdout=open(os.path.join(d, "pebble.log"), "w"), stderr=subprocess.STDOUT)
        hmtest._cleanups.append(lambda: hmtest._terminate(pebble))
        hmtest.wait_port(14000, host=ca.addr)

        # the mail host: HTTP-01 webroot on port 80, Exim and Dovecot on a
        # bootstrap (self-signed) certificate at the paths the hook installs to
        webroot = os.path.join(d, "webroot")
        os.makedirs(webroot)
        http = mail.popen(["python3", "-m", "http.server", "80", "--bind", mail.addr,
                           "--directory", webroot],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hmtest._cleanups.append(lambda: hmtest._terminate(http))
        tls = os.path.join(d, "tls")
        os.makedirs(os.path.join(tls, "private"))
        cert, key, cafile = (os.path.join(tls, "cert.pem"), os.path.join(tls, "private", "key.pem"),
                             os.path.join(tls, "ca.pem"))
        boot_cert, boot_key = hmtest.test_cert()
        shutil.copyfile(boot_cert, cert)
        shutil.copyfile(boot_cert, cafile)
        shutil.copyfile(boot_key, key)
        hmtest.wait_port(80, host=mail.addr)
        exim = hmtest.Exim(host=mail, transport_command="/bin/true", tls=False,
                           extra_main=f"tls_advertise_hosts = *\ntls_certificate = {cert}\n"
                                      f"tls_privatekey = {key}\n").start()
        dovecot = hmtest.Dovecot(extra_conf=f"ssl_cert = <{cert}\nssl_key = <{key}\n").start()

        conf = os.path.join(d, "acme.conf")
        log = os.path.join(d, "acme.log")
        ports = (f"{mail.addr}:{exim.smtp_port}/smtp 127.0.0.1:{dovecot.imaps_port} "
                 f"127.0.0.1:{dovecot.sieve_port}/sieve")
        with open(conf, "w") as f:
            f.write(f"LINEAGE={d}/le/live/homemail\nCERT={cert}\nKEY={key}\nCA={cafile}\n"
                    f"ROOT_URL=https://{ca.addr}:15000/roots/0\nROOT_URL_CA={lcert}\n"
                    f"CHECK_HOST={NAME}\nCHECK_PORTS='{ports}'\nTLSA_CHECK=yes\n"
                    f"RESOLVER={w.resolver_addr}\nLOG={log}\n"
                    f"RELOAD='kill -HUP {exim.proc.pid} && doveadm -c {dovecot.conf_path} reload'\n")
        env = dict(os.environ, REQUESTS_CA_BUNDLE=lcert, HOMEMAIL_ACME_CONF=conf)
        certbot = ["certbot", "--non-interactive", "--config-dir", f"{d}/le",
                   "--work-dir", f"{d}/le-work", "--logs-dir", f"{d}/le-logs"]
        os.makedirs(f"{d}/le/renewal-hooks/deploy")
        os.symlink(HOOK, f"{d}/le/renewal-hooks/deploy/homemail")
        lineage = f"{d}/le/live/homemail"

        def hook(*args):
            return subprocess.run([HOOK, *args], capture_output=True, text=True, timeout=180,
                                  env=dict(env, RENEWED_LINEAGE=lineage))

        try:
            # 1. issuance (what the role runs: --reuse-key, webroot)
            r = subprocess.run(certbot + [
                "certonly", "--agree-tos", "--register-unsafely-without-email",
                "--server", f"https://{ca.addr}:14000/dir", "--cert-name", "homemail",
                "--webroot", "--webroot-path", webroot, "--reuse-key", "--domain", NAME],
                capture_output=True, text=True, timeout=180, env=env)
            assert r.returncode == 0, r.stdout + r.stderr + open(os.path.join(d, "pebble.log")).read()
            issuer = subprocess.run(["openssl", "x509", "-in", f"{lineage}/cert.pem", "-noout",
                                     "-issuer"], capture_output=True, text=True).stdout
            assert "Pebble" in issuer, issuer

            # 2. no TLSA record for the new key yet: refused, nothing changes
            r = hook("--if-changed")
            assert r.returncode == 1 and "refused" in r.stdout, r.stdout + r.stderr
            assert open(cert).read() == open(boot_cert).read()

            # 3. publish, then install: reloads, every listener serves it
            spki = _spki_of_key(f"{lineage}/privkey.pem")
            w.set_zone("acme.test", zone + [f"_25._tcp.mail IN TLSA 3 1 1 {spki}"])
            hmtest.wait_for(lambda: spki.upper() in w.ask(f"_25._tcp.{NAME}", "TLSA")
                            .upper().replace(" ", ""), 10, 0.2, "the resolver to see the TLSA")
            r = hook("--if-changed")
            assert r.returncode == 0 and "served on: " + ports in r.stdout, r.stdout + r.stderr
            first = _leaf_der(cert)
            assert first == _leaf_der(f"{lineage}/cert.pem")
            assert _served_imaps(dovecot.imaps_port, cafile) == first   # verifies with pebble's root
            st = os.stat(key)
            assert (st.st_mode & 0o777, st.st_uid) == (0o640, 0), oct(st.st_mode)
            assert hook("--if-changed").stdout.strip() == "unchanged"

            # 4. renewal from certbot runs the hook: new certificate, same key
            r = subprocess.run(certbot + ["renew", "--force-renewal", "--no-random-sleep-on-renew"],
                               capture_output=True, text=True, timeout=180, env=env)
            assert r.returncode == 0, r.stdout + r.stderr
            second = _leaf_der(cert)
            assert second != first and _spki_of_key(key) == spki
            assert _served_imaps(dovecot.imaps_port, cafile) == second
            text = open(log).read()
            assert text.count("served on: " + ports) == 2, text
            assert f"reloaded: kill -HUP {exim.proc.pid}" in text, text
        finally:
            dovecot.stop()
            exim.stop()
            hmtest._terminate(http)
            hmtest._terminate(pebble)
