#!/usr/bin/python3
"""backup-host-drill.py — the mail side of tools/backup-host-drill: seed the
lab users' mailboxes and Sieve scripts, and read them back (IMAPS 993 and
ManageSieve 4190 of the running lab, as the users) into a JSON snapshot.

  backup-host-drill.py seed               folders, flagged messages, a script
  backup-host-drill.py snapshot FILE      write what the users see to FILE
  backup-host-drill.py compare FILE       exit 1 unless every message of FILE is
                                          there with the same flags and keywords,
                                          every folder, subscription and script
                                          (and the active one) the same; mail
                                          that arrived since (the re-provisioning's
                                          round trip, other probes) is listed
"""
import hashlib
import imaplib
import json
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "lab"))
import labconf as L  # noqa: E402
from test_lab_managesieve import ManageSieve  # noqa: E402

USERS = ("roberto", "maria")
LIST_RE = re.compile(rb'^\(([^)]*)\) "[^"]*" "?(.*?)"?$')


def imap(user):
    c = imaplib.IMAP4_SSL(L.HOST, 993, ssl_context=L.tls_context())
    c.login(user, L.password(user))
    return c


def seed():
    for user in USERS:
        c = imap(user)
        for box in ("Drill", "Drill.Sub", "Drill.Empty"):
            c.create(box)
        c.subscribe("Drill")
        for i, (box, flags) in enumerate([("INBOX", r"(\Seen $Important)"),
                                          ("Drill", r"(\Flagged drill-kw)"),
                                          ("Drill.Sub", r"(\Answered \Seen)"), ("INBOX", None)]):
            body = (f"From: drill@example.org\r\nTo: {user}@{L.DOMAIN}\r\nSubject: drill {i}\r\n"
                    f"Message-ID: <drill{i}.{user}@example.org>\r\n\r\nbody {i}\r\n").encode()
            assert c.append(box, flags, None, body)[0] == "OK"
        c.logout()
        ms = ManageSieve(user)
        script = 'require ["fileinto"];\nif header :contains "subject" "drill" { fileinto "Drill"; }\n'
        ms.putscript("drill", script)
        ms.command(b'SETACTIVE "drill"')
        ms.close()


def snapshot():
    snap = {}
    for user in USERS:
        c = imap(user)
        boxes = {}
        typ, data = c.list()
        for line in data:
            m = LIST_RE.match(line)
            if not m or b"\\Noselect" in m.group(1):
                continue
            name = m.group(2).decode()
            typ, n = c.select(f'"{name}"', readonly=True)
            msgs = []
            if int(n[0]):
                typ, items = c.fetch("1:*", "(FLAGS BODY.PEEK[])")
                for it in items:
                    if isinstance(it, tuple):
                        flags = re.search(rb"FLAGS \(([^)]*)\)", it[0]).group(1).decode().split()
                        subj = re.search(rb"^Subject: ?(.*)$", it[1], re.M | re.I)
                        msgs.append([hashlib.sha256(it[1]).hexdigest(),
                                     sorted(f for f in flags if f != "\\Recent"),
                                     subj.group(1).decode("ascii", "replace").strip()
                                     if subj else ""])
            boxes[name] = sorted(msgs)
        typ, data = c.lsub()
        subs = sorted(LIST_RE.match(x).group(2).decode() for x in data if x)
        c.logout()
        ms = ManageSieve(user)
        lines = ms.command(b"LISTSCRIPTS")
        scripts = {}
        for line in lines[:-1]:
            m = re.match(rb'^"([^"]*)"( ACTIVE)?', line)
            ms.sock.sendall(b'GETSCRIPT "' + m.group(1) + b'"\r\n')
            body = ms.response()
            scripts[m.group(1).decode() + (" (active)" if m.group(2) else "")] = \
                hashlib.sha256(b"".join(body[1:-1])).hexdigest()
        ms.close()
        snap[user] = {"mailboxes": boxes, "subscribed": subs, "scripts": scripts,
                      "messages": sum(len(v) for v in boxes.values())}
    return snap


def main():
    if sys.argv[1] == "seed":
        seed()
    elif sys.argv[1] == "snapshot":
        with open(sys.argv[2], "w") as f:
            json.dump(snapshot(), f, indent=1, sort_keys=True)
    elif sys.argv[1] == "compare":
        want = json.load(open(sys.argv[2]))
        got = snapshot()
        bad = False
        for user in USERS:
            w, g = want[user], got[user]
            lost, extra = [], []
            for box, msgs in w["mailboxes"].items():
                have = [m[:2] for m in g["mailboxes"].get(box, [])]
                for m in msgs:
                    if m[:2] in have:
                        have.remove(m[:2])
                    else:
                        lost.append((box, m[2] if len(m) > 2 else m[0][:12], m[1]))
            for box, msgs in g["mailboxes"].items():
                wanted = [m[:2] for m in w["mailboxes"].get(box, [])]
                extra += [(box, m[2]) for m in msgs if m[:2] not in wanted]
            same = (not lost and set(w["mailboxes"]) <= set(g["mailboxes"])
                    and w["subscribed"] == g["subscribed"] and w["scripts"] == g["scripts"])
            bad |= not same
            print(f"{user}: {w['messages']} messages in {len(w['mailboxes'])} folders, "
                  f"{len(w['scripts'])} script(s): "
                  + ("all back, identical" if same else f"DIFFERENT: lost {lost}")
                  + (f"; {len(extra)} arrived since: {extra}" if extra else ""))
            if w["scripts"] != g["scripts"] or w["subscribed"] != g["subscribed"]:
                print(f"  scripts {w['scripts']} -> {g['scripts']}; subscribed "
                      f"{w['subscribed']} -> {g['subscribed']}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
