"""ManageSieve (4190) in the running lab: a script uploaded over the protocol
files the next message into its folder; scripts using an extension outside
homemail's set are refused."""
import base64
import socket
import ssl

import labconf as L


class ManageSieve:
    """A minimal RFC 5804 client: STARTTLS, AUTHENTICATE PLAIN, PUTSCRIPT, SETACTIVE."""

    def __init__(self, user):
        self.sock = socket.create_connection((L.HOST, 4190), timeout=30)
        self.f = self.sock.makefile("rb")
        self.response()                        # capabilities + OK
        self.command(b"STARTTLS")
        self.sock = L.tls_context().wrap_socket(self.sock, server_hostname=L.HOST)
        self.f = self.sock.makefile("rb")
        self.response()                        # capabilities again, over TLS
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + L.password(user).encode())
        self.command(b'AUTHENTICATE "PLAIN" "' + token + b'"')

    def response(self, must_ok=True):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise AssertionError("connection closed after %r" % lines)
            lines.append(line)
            if line[:2] == b"OK" or line[:2] == b"NO" or line[:3] == b"BYE":
                if must_ok:
                    assert line[:2] == b"OK", lines
                return lines

    def command(self, cmd, must_ok=True):
        self.sock.sendall(cmd + b"\r\n")
        return self.response(must_ok)

    def putscript(self, name, script, must_ok=True):
        data = script.encode()
        self.sock.sendall(b'PUTSCRIPT "%s" {%d+}\r\n' % (name.encode(), len(data)) + data + b"\r\n")
        return self.response(must_ok)

    def checkscript(self, script, must_ok=True):
        data = script.encode()
        self.sock.sendall(b"CHECKSCRIPT {%d+}\r\n" % len(data) + data + b"\r\n")
        return self.response(must_ok)

    def close(self):
        try:
            self.command(b"LOGOUT", must_ok=False)
        finally:
            self.sock.close()


def test_uploaded_script_files_the_next_message():
    ms = ManageSieve("maria")
    try:
        ms.putscript("homemail-lab", 'require ["fileinto", "mailbox"];\r\n'
                     'if header :contains "subject" "[lab-filter]" {\r\n'
                     '  fileinto :create "Filtrado";\r\n}\r\n')
        ms.command(b'SETACTIVE "homemail-lab"')
    finally:
        ms.close()
    rcpt = "maria@" + L.DOMAIN
    subject, msg = L.make_message(rcpt, subject="[lab-filter] " + L.make_message(rcpt)[0])
    L.submit("roberto", [rcpt], msg)
    got = L.imap_find("maria", subject, mailbox="Filtrado")
    L.assert_intact(got, msg)


def test_extension_outside_homemail_set_is_refused():
    ms = ManageSieve("maria")
    try:
        lines = ms.putscript("homemail-lab-bad", 'require ["enotify"];\r\n'
                             'notify "mailto:roberto@home.com.bo";\r\n', must_ok=False)
        assert lines[-1].startswith(b"NO"), lines
        ms.checkscript('require ["fileinto"];\r\nfileinto "INBOX";\r\n')
    finally:
        ms.close()
