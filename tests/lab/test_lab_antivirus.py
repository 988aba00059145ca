"""ClamAV in the running lab (antivirus role): clamd up with homemail's test
signatures, able to read Exim's spool copies, and Exim refusing EICAR at DATA
from the outside (25) and from an authenticated user (587) alike."""
import base64
import smtplib
import subprocess

import pytest

import labconf as L

EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def test_clamd_runs_as_clamav_in_group_debian_exim():
    r = subprocess.run(["clamdscan", "--ping", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Debian-exim" in subprocess.run(["id", "-nG", "clamav"], capture_output=True,
                                           text=True).stdout.split()


def _eicar_message():
    b64 = base64.encodebytes(EICAR.encode()).decode().replace("\n", "\r\n")
    body = ("--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b1\r\n"
            "Content-Type: application/octet-stream; name=\"t.txt\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--b1--\r\n")
    subject, msg = L.make_message("maria@" + L.DOMAIN, body=body)
    return msg.replace(b"Content-Type: text/plain; charset=us-ascii",
                       b"Content-Type: multipart/mixed; boundary=\"b1\"", 1)


def test_eicar_refused_from_outside():
    with smtplib.SMTP(L.HOST, 25, timeout=60, source_address=(L.OUTSIDE, 0)) as s:
        s.ehlo("probe.example.net")
        s.starttls(context=L.tls_context())
        s.ehlo("probe.example.net")
        with pytest.raises(smtplib.SMTPDataError) as ex:
            s.sendmail("someone@example.net", ["maria@" + L.DOMAIN], _eicar_message())
    assert ex.value.smtp_code == 550, ex.value
    assert ex.value.smtp_error == b"message refused by the virus scanner"


def test_eicar_refused_from_authenticated_user():
    with pytest.raises(smtplib.SMTPDataError) as ex:
        L.submit("roberto", ["maria@" + L.DOMAIN], _eicar_message(), source=L.OUTSIDE)
    assert ex.value.smtp_code == 550, ex.value
