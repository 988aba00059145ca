#!/usr/bin/python3
"""roundtrip — make lab's proof: a message to roberto@home.com.bo through
submission (587, STARTTLS + AUTH) comes back over IMAPS byte for byte (body).

Prints one "OK ..." line per verified step; exits non-zero on the first failure.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import labconf  # noqa: E402


def main():
    rcpt = "roberto@" + labconf.DOMAIN
    subject, msg = labconf.make_message(rcpt)
    t0 = time.time()
    labconf.submit("roberto", [rcpt], msg, port=587)
    print("OK submitted to %s via %s:587 with STARTTLS and AUTH (certificate verified for %s)"
          % (rcpt, labconf.HOST, labconf.HOST))
    got = labconf.imap_find("roberto", subject, timeout=60)
    if labconf.body_of(got) != labconf.body_of(msg):
        print("FAIL body differs:\n%r\n%r" % (labconf.body_of(got), labconf.body_of(msg)))
        return 1
    print("OK read back over IMAPS %s:993 in %.1f s, body identical" % (labconf.HOST, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
