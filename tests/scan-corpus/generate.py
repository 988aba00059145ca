#!/usr/bin/python3
"""generate.py OUTDIR — the large scan-corpus messages, made at test time
rather than checked in: 100,000-level nesting, 100,000 parts, a 10 MB header
block, a 100 KB line, and a clean 1 MB message with 10 attachments (also the
benchmark's SMTP message).  Writes OUTDIR/*.eml and OUTDIR/MANIFEST in the
format of ../MANIFEST (paths relative to OUTDIR)."""
import base64
import os
import random
import sys

HDR = ("From: Alice <alice@example.org>\nTo: bob@home.com.bo\n"
       "Date: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <{n}@gen.example.org>\n"
       "Subject: {s}\nMIME-Version: 1.0\n")


def nesting(n):
    out = [HDR.format(n="g1", s="deep")]
    for i in range(n):
        out.append(f'Content-Type: multipart/mixed; boundary="n{i}x"\n\n--n{i}x\n')
    out.append("Content-Type: text/plain\n\ndeep inside\n")
    for i in reversed(range(n)):
        out.append(f"--n{i}x--\n")
    return "".join(out).encode()


def parts(n):
    out = [HDR.format(n="g2", s="many parts"), 'Content-Type: multipart/mixed; boundary="p"\n\n']
    out += ["--p\nContent-Type: text/plain\n\nx\n"] * n
    out.append("--p--\n")
    return "".join(out).encode()


def big_header(mb):
    line = "X-Filler: " + "a" * 88 + "\n"
    count = mb * 1024 * 1024 // len(line)
    return (HDR.format(n="g3", s="big header") + line * count + "\nbody\n").encode()


def long_line(n):
    return (HDR.format(n="g4", s="long line") + "Content-Type: text/plain\n\n" + "x" * n + "\n").encode()


def ten_attachments(total=1024 * 1024):
    rnd = random.Random(42)
    b = "=_ten"
    out = [HDR.format(n="g5", s="ten attachments"), f'Content-Type: multipart/mixed; boundary="{b}"\n\n']
    out.append(f"--{b}\nContent-Type: text/plain\n\nTen files attached.\n")
    per = total // 10 * 3 // 4  # base64 grows by 4/3
    for i in range(10):
        data = rnd.randbytes(per)
        out.append(f"--{b}\nContent-Type: application/pdf\n"
                   f'Content-Disposition: attachment; filename="file{i}.pdf"\n'
                   f"Content-Transfer-Encoding: base64\n\n")
        out.append(base64.encodebytes(data).decode())
    out.append(f"--{b}--\n")
    return "".join(out).encode()


CASES = [
    ("g01-nesting-100000.eml", lambda: nesting(100000), "reject limit"),
    ("g02-parts-100000.eml", lambda: parts(100000), "reject limit"),
    # Exim's own header_maxsize (1 MB) refuses this before local_scan runs
    ("g03-header-10mb.eml", lambda: big_header(10), "reject limit exim=reject-by-exim"),
    ("g04-line-100k.eml", lambda: long_line(100000), "reject limit"),
    ("g05-ten-attachments-1mb.eml", ten_attachments, "accept -"),
]


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    lines = []
    for name, make, expect in CASES:
        p = os.path.join(outdir, name)
        if not os.path.exists(p):
            with open(p + ".tmp", "wb") as f:
                f.write(make())
            os.rename(p + ".tmp", p)
        lines.append(f"{name} {expect}")
    with open(os.path.join(outdir, "MANIFEST"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
