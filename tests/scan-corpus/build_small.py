#!/usr/bin/python3
"""build_small.py — writes the checked-in scan corpus (hostile/*.eml,
clean/*.eml) and MANIFEST.  Kept so that every message can be regenerated
and read as source; the files themselves are what the tests use.

MANIFEST columns: path  expected-verdict  rule  [exim=VERDICT]
  exim=accept-changed: Exim itself rewrote the message before local_scan
  (NUL, bare CR, missing Date: in the top header block), so it is delivered
  in Exim's corrected form.
  verdict: accept | reject | tempreject ; rule: the rule that decides
  (for accept, a rule named in X-Homemail-Scan `rules=`, or '-')
  exim=...: what a private exim4 with the module answers when Exim itself
  acts before local_scan (e.g. its own header size limit).
"""
import base64, io, os, sys, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bombs  # noqa: E402  (its 7z writer)
H = "From: Alice <alice@example.org>\nTo: bob@home.com.bo\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <{n}@example.org>\nMIME-Version: 1.0\n"

entries = []


def w(kind, name, text, verdict, rule="-", exim=None):
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogateescape")
    path = os.path.join(kind, name + ".eml")
    os.makedirs(os.path.join(HERE, kind), exist_ok=True)
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(text)
    entries.append(f"{path} {verdict} {rule}" + (f" exim={exim}" if exim else ""))


def hdr(n, subject="test"):
    return H.format(n=n) + f"Subject: {subject}\n"


def mixed(n, parts, subject="test", boundary="=_b1", extra=""):
    s = hdr(n, subject) + extra + f'Content-Type: multipart/mixed; boundary="{boundary}"\n\nThis is a MIME message.\n'
    for p in parts:
        s += f"--{boundary}\n" + p
    return s + f"--{boundary}--\n"


TEXT = "Content-Type: text/plain; charset=us-ascii\n\nPlease see the attachment.\n"
B64 = base64.encodebytes(b"MZ\x90\x00 this is not really a program\n" * 4).decode()
PDF = base64.encodebytes(b"%PDF-1.4\n% a tiny pdf-ish file\n" * 8).decode()


def att(disp, ctype="application/octet-stream", cte="base64", body=B64):
    return f"Content-Type: {ctype}\nContent-Disposition: {disp}\nContent-Transfer-Encoding: {cte}\n\n{body}"


def zipbytes(members, nested=None):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for m in members:
            z.writestr(m, b"content of " + m.encode() + b"\n")
        if nested:
            z.writestr(nested[0], nested[1])
    return b.getvalue()


def sevenzip(names):
    """A 7z archive of the named members, each holding "content of NAME\n"
    (written by bombs.sevenzip, libarchive through ctypes: Python has none)."""
    return bombs.sevenzip([(m, b"content of " + m.encode() + b"\n") for m in names])


def b64(data):
    return base64.encodebytes(data).decode()


h = 0


def hw(name, text, verdict, rule, exim=None):
    global h
    h += 1
    w("hostile", f"h{h:02d}-{name}", text, verdict, rule, exim)


# --- blocked names, every source -----------------------------------------
hw("exe-filename", mixed(1, [TEXT, att('attachment; filename="invoice.exe"')]), "reject", "blocked")
hw("scr-ctype-name-only", mixed(2, [TEXT, f'Content-Type: application/octet-stream; name="photo.scr"\nContent-Transfer-Encoding: base64\n\n{B64}']), "reject", "blocked")
hw("rfc2231-continuation", mixed(3, [TEXT, att('attachment; filename*0="inv"; filename*1="oice.e"; filename*2="xe"')]), "reject", "blocked")
hw("rfc2231-out-of-order", mixed(4, [TEXT, att('attachment; filename*1=".exe"; filename*0="invoice"')]), "reject", "ambiguous")
hw("rfc2231-pct-charset", mixed(5, [TEXT, att("attachment; filename*=utf-8''%69nvoice%2E%65xe")]), "reject", "blocked")
hw("rfc2231-utf16", mixed(6, [TEXT, att("attachment; filename*=utf-16le''" + "".join("%%%02X" % c for c in "run.exe".encode("utf-16le")))]), "reject", "blocked")
hw("rfc2047-b-filename", mixed(7, [TEXT, att('attachment; filename="=?utf-8?B?aW52b2ljZS5leGU=?="')]), "reject", "blocked")
hw("rfc2047-q-name", mixed(8, [TEXT, f'Content-Type: application/octet-stream; name="=?iso-8859-1?Q?setup=2Eexe?="\nContent-Transfer-Encoding: base64\n\n{B64}']), "reject", "blocked")
hw("rfc2047-split-words", mixed(9, [TEXT, att('attachment; filename="=?utf-8?Q?inv?= =?utf-8?Q?oice.e?= =?utf-8?Q?xe?="')]), "reject", "blocked")
hw("comment-before-name", mixed(10, [TEXT, att('attachment; (a comment; filename="safe.pdf") filename="run.exe"')]), "reject", "blocked")
hw("escaped-quotes", mixed(11, [TEXT, att('attachment; filename="report\\".pdf\\" .exe"')]), "reject", "blocked")
hw("trailing-dot", mixed(12, [TEXT, att('attachment; filename="invoice.exe."')]), "reject", "blocked")
hw("trailing-spaces", mixed(13, [TEXT, att('attachment; filename="invoice.exe   "')]), "reject", "blocked")
hw("bidi-rlo-exe", mixed(14, [TEXT, att("attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe")]), "reject", "blocked")
hw("bidi-rlo-only", mixed(15, [TEXT, att("attachment; filename*=utf-8''photo%E2%80%AEgpj.pdf")]), "reject", "ambiguous")
hw("nul-raw-in-filename", mixed(16, [TEXT, att('attachment; filename="invoice.exe\0.pdf"')]), "reject", "header_nul")
hw("nul-pct-in-filename", mixed(17, [TEXT, att("attachment; filename*=utf-8''invoice.exe%00.pdf")]), "reject", "blocked")
hw("uuencode-in-text", mixed(18, ["Content-Type: text/plain\n\nhere it is\n\nbegin 644 invoice.exe\nM35J0``,````$````__\\``+@`````````0```````````````````````````\n`\nend\n"]), "reject", "blocked")
hw("uuencode-in-qp", mixed(19, ["Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nhere\n=62egin 644 invoice=2Eexe\nM35J0\n`\nend\n"]), "reject", "blocked")
hw("uuencode-no-mime", hdr(20) + "Content-Type: text/plain\n\nsee below\n\nbegin 755 screensaver.scr\nM35J0\n`\nend\n", "reject", "blocked")
inner = "From: x@example.net\nDate: Mon, 1 Jan 2024 09:00:00 +0000\nSubject: inner\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=in1\n\n--in1\n" + TEXT + "--in1\n" + att('attachment; filename="payload.js"', "application/javascript", "7bit", "WScript.Echo(1);\n") + "--in1--\n"
hw("rfc822-inner-js", mixed(21, [TEXT, "Content-Type: message/rfc822\nContent-Disposition: attachment\n\n" + inner]), "reject", "blocked")
inner2 = "From: y@example.net\nSubject: wrap\nDate: Mon, 1 Jan 2024 08:00:00 +0000\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=mid\n\n--mid\nContent-Type: message/rfc822\n\n" + inner.replace("payload.js", "payload.vbs") + "--mid--\n"
hw("rfc822-double-nested", mixed(22, [TEXT, "Content-Type: message/rfc822\n\n" + inner2]), "reject", "blocked")
hw("zip-with-exe", mixed(23, [TEXT, att('attachment; filename="docs.zip"', "application/zip", "base64", b64(zipbytes(["readme.txt", "setup.exe"])))]), "reject", "blocked")
hw("zip-in-zip-exe", mixed(24, [TEXT, att('attachment; filename="outer.zip"', "application/zip", "base64", b64(zipbytes(["a.txt"], ("inner.zip", zipbytes(["deep/run.bat"])))))]), "reject", "blocked")
hw("zip-named-pdf", mixed(25, [TEXT, att('attachment; filename="statement.pdf"', "application/pdf", "base64", b64(zipbytes(["statement.pdf.js"])))]), "reject", "blocked")
hw("zip-unnamed", mixed(26, [TEXT, "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + b64(zipbytes(["x.hta"]))]), "reject", "blocked")
# the local header survives truncation: streaming unzippers still see a.exe
hw("zip-truncated-exe", mixed(27, [TEXT, att('attachment; filename="broken.zip"', "application/zip", "base64", b64(zipbytes(["a.exe"])[:40]))]), "reject", "blocked")
# --- ambiguous structure --------------------------------------------------
hw("dup-boundary-param", hdr(28) + 'Content-Type: multipart/mixed; boundary="aaa"; boundary="bbb"\n\n--aaa\n' + TEXT + "--bbb\n" + att('attachment; filename="x.exe"') + "--bbb--\n--aaa--\n", "reject", "ambiguous")
hw("dup-boundary-nested", mixed(29, ['Content-Type: multipart/alternative; boundary="=_b1"\n\n--=_b1\n' + TEXT + "--=_b1--\n", TEXT]), "reject", "ambiguous")
hw("prefix-boundary", hdr(30) + 'Content-Type: multipart/mixed; boundary="abc"\n\n--abc\n' + TEXT + "--abcX\n" + att('attachment; filename="hidden.pdf"', "application/pdf", "base64", PDF) + "--abc--\n", "reject", "ambiguous")
hw("boundary-prefix-of-inner", hdr(31) + 'Content-Type: multipart/mixed; boundary="abc"\n\n--abc\nContent-Type: multipart/alternative; boundary="abcdef"\n\n--abcdef\n' + TEXT + "--abcdef--\n--abc--\n", "reject", "ambiguous")
hw("missing-close", hdr(32) + 'Content-Type: multipart/mixed; boundary="zz"\n\n--zz\n' + TEXT + "--zz\n" + att('attachment; filename="a.pdf"', "application/pdf", "base64", PDF), "reject", "ambiguous")
hw("multipart-no-boundary", hdr(33) + "Content-Type: multipart/mixed\n\n--x\n" + TEXT + "--x--\n", "reject", "ambiguous")
hw("empty-boundary", hdr(34) + 'Content-Type: multipart/mixed; boundary=""\n\n--\n' + TEXT + "----\n", "reject", "ambiguous")
hw("dup-content-type", hdr(35) + "Content-Type: text/plain\nContent-Type: multipart/mixed; boundary=q\n\n--q\n" + att('attachment; filename="a.pdf"', "application/pdf", "base64", PDF) + "--q--\n", "reject", "ambiguous")
hw("dup-cte", mixed(36, [TEXT, "Content-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\nContent-Transfer-Encoding: 7bit\n\n" + PDF]), "reject", "ambiguous")
hw("dup-disposition", mixed(37, [TEXT, 'Content-Type: application/pdf\nContent-Disposition: attachment; filename="a.pdf"\nContent-Disposition: attachment; filename="a.cmd"\nContent-Transfer-Encoding: base64\n\n' + PDF]), "reject", "ambiguous")
hw("two-filenames", mixed(38, [TEXT, att('attachment; filename="a.pdf"; filename="b.pdf"', "application/pdf", "base64", PDF)]), "reject", "ambiguous")
hw("filename-name-disagree-exe", mixed(39, [TEXT, 'Content-Type: application/pdf; name="b.exe"\n' + 'Content-Disposition: attachment; filename="a.pdf"\nContent-Transfer-Encoding: base64\n\n' + PDF]), "reject", "blocked")
hw("filename-name-disagree", mixed(40, [TEXT, 'Content-Type: application/pdf; name="b.pdf"\n' + 'Content-Disposition: attachment; filename="a.pdf"\nContent-Transfer-Encoding: base64\n\n' + PDF]), "reject", "ambiguous")
hw("plain-vs-2231", mixed(41, [TEXT, att("attachment; filename=\"a.pdf\"; filename*=utf-8''a.exe", "application/pdf", "base64", PDF)]), "reject", "blocked")
hw("rfc2231-gap", mixed(42, [TEXT, att('attachment; filename*0="rep"; filename*2="ort.pdf"', "application/pdf", "base64", PDF)]), "reject", "ambiguous")
hw("missing-semicolon", hdr(43) + 'Content-Type: multipart/mixed boundary="q1"\n\n--q1\n' + TEXT + "--q1--\n", "reject", "ambiguous")
hw("close-with-junk", hdr(44) + 'Content-Type: multipart/mixed; boundary="q2"\n\n--q2\n' + TEXT + "--q2--junk\n", "reject", "ambiguous")
hw("outer-closes-inner", hdr(45) + 'Content-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: multipart/alternative; boundary="i"\n\n--i\n' + TEXT + "--o--\n", "reject", "ambiguous")
hw("whitespace-line-in-part-header", mixed(46, [TEXT, "Content-Type: application/pdf\n \nContent-Disposition: attachment; filename=a.cmd\nContent-Transfer-Encoding: base64\n\n" + PDF]), "reject", "ambiguous")
hw("part-header-no-colon", mixed(47, [TEXT, "Content-Type: application/pdf\nthis line has no colon\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\n" + PDF]), "reject", "ambiguous")
hw("two-dates", hdr(48).replace("Subject:", "Date: Tue, 2 Jan 2024 10:00:00 +0000\nSubject:") + "\nhello\n", "reject", "ambiguous")
# --- limits ----------------------------------------------------------------
deep = hdr(49)
for i in range(25):
    deep += f'Content-Type: multipart/mixed; boundary="d{i}x"\n\n--d{i}x\n'
deep += TEXT
for i in reversed(range(25)):
    deep += f"--d{i}x--\n"
hw("depth-25", deep, "reject", "limit")
hw("long-boundary", mixed(50, [TEXT], boundary="B" * 200), "reject", "limit")
# --- header sanity -----------------------------------------------------------
# Exim itself turns a bare CR inside a header into a fold ("\n "), so through
# Exim the trick arrives defused and the message is accepted
hw("bare-cr-header", hdr(51).replace("Subject: test", "Subject: test\rBcc: victim@example.org") + "\nhello\n", "reject", "header_bare_cr", exim="accept-changed")
# Exim replaces a NUL in the message's own header block with '?' before local_scan
hw("nul-in-subject", hdr(52).replace("Subject: test", "Subject: te\0st") + "\nhello\n", "reject", "header_nul", exim="accept-changed")
hw("two-from", hdr(53).replace("To:", "From: ceo@home.com.bo\nTo:") + "\nhello\n", "reject", "from")
hw("no-from", hdr(54).replace("From: Alice <alice@example.org>\n", "") + "\nhello\n", "reject", "from")
# Exim adds a Date: header to a message without one before local_scan runs
hw("no-date", hdr(55).replace("Date: Mon, 1 Jan 2024 10:00:00 +0000\n", "") + "\nhello\n", "accept", "date", exim="accept-changed")
hw("raw-8bit-subject", hdr(56).replace("Subject: test", "Subject: caf\xc3\xa9") + "\nhello\n", "accept", "header_8bit")
# --- encodings ----------------------------------------------------------------
hw("base64-junk", mixed(57, [TEXT, att('attachment; filename="a.pdf"', "application/pdf", "base64", "JVBERi0x!!!LjQK\n")]), "reject", "encoding")
hw("base64-after-padding", mixed(58, [TEXT, att('attachment; filename="a.pdf"', "application/pdf", "base64", "JVBERg==LjQK\n")]), "reject", "encoding")
hw("x-uuencode-cte", mixed(59, [TEXT, att('attachment; filename="a.pdf"', "application/pdf", "x-uuencode", "begin 644 a.pdf\nM\n`\nend\n")]), "reject", "encoding")
# --- more name tricks -----------------------------------------------------------
hw("rfc822-own-name", mixed(60, [TEXT, "Content-Type: message/rfc822\n\nFrom: z@example.net\nSubject: s\nContent-Type: application/octet-stream; name=\"doc.pif\"\nContent-Transfer-Encoding: base64\n\n" + B64]), "reject", "blocked")
hw("mixed-case-ext", mixed(61, [TEXT, att('attachment; filename="Invoice.ExE"')]), "reject", "blocked")
hw("windows-path", mixed(62, [TEXT, att('attachment; filename="..\\\\..\\\\Startup\\\\run.bat"')]), "reject", "blocked")
hw("ntfs-stream", mixed(63, [TEXT, att('attachment; filename="invoice.exe:Zone.Identifier"')]), "reject", "blocked")
hw("zero-width-in-ext", mixed(64, [TEXT, att("attachment; filename*=utf-8''invoice.e%E2%80%8Bxe")]), "reject", "blocked")
hw("rfc2231-utf7", mixed(65, [TEXT, att("attachment; filename*=utf-7''invoice+AC4-exe")]), "reject", "blocked")
hw("rfc2047-utf7", mixed(66, [TEXT, att('attachment; filename="=?utf-7?Q?invoice+AC4-exe?="')]), "reject", "blocked")
dig = hdr(67) + 'Content-Type: multipart/digest; boundary="dg"\n\n--dg\n\nFrom: q@example.net\nSubject: d\nContent-Type: application/octet-stream; name="x.jse"\n\nWScript\n--dg--\n'
hw("digest-default-rfc822", dig, "reject", "blocked")
hw("lnk-in-inline", mixed(68, [TEXT, att('inline; filename="shortcut.lnk"')]), "reject", "blocked")
hw("iso-container", mixed(69, [TEXT, att('attachment; filename="invoice.iso"')]), "reject", "blocked")
hw("zip-corrupt", mixed(71, [TEXT, att('attachment; filename="corrupt.zip"', "application/zip", "base64", b64(b"PK\x03\x04" + bytes(range(7, 200))))]), "accept", "unscannable")
hw("base64-rfc822", mixed(72, [TEXT, "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n" + b64(inner.encode())]), "reject", "encoding")
hw("message-partial", hdr(73).replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: message/partial; id=\"frag1@example.org\"; number=1; total=2\n") + "\nFrom: x@example.org\nSubject: part\nContent-Type: application/octet-stream; name=\"a.ex\"\n\nTVqQ\n", "accept", "unscannable")
hw("7z-with-script", mixed(74, [TEXT, att('attachment; filename="photos.7z"', "application/x-7z-compressed", "base64", b64(sevenzip(["holiday/photo1.jpg", "holiday/slideshow.vbs"])))]), "reject", "blocked")
hw("unquoted-name-spaces", mixed(70, [TEXT, att("attachment; filename=my invoice.exe")]), "reject", "ambiguous")

# --- clean ------------------------------------------------------------------------
c = 0


def cw(name, text, verdict="accept", rule="-"):
    global c
    c += 1
    w("clean", f"c{c:02d}-{name}", text, verdict, rule)


cw("plain", hdr(101) + "Content-Type: text/plain; charset=us-ascii\n\nHello Bob,\n\nlunch tomorrow?\n\n-- \nAlice\n")
cw("alternative", hdr(102) + 'Content-Type: multipart/alternative; boundary="alt-1"\n\n--alt-1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9 at 10?\n--alt-1\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n<p>Caf=C3=A9 at 10?</p>\n--alt-1--\n')
JPG = b64(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
cw("attachments", mixed(103, [TEXT, att('attachment; filename="report.pdf"', "application/pdf", "base64", PDF), att('attachment; filename="photo.jpg"', "image/jpeg", "base64", JPG)]))
fwd_inner = "From: carol@example.net\nTo: alice@example.org\nDate: Sun, 31 Dec 2023 12:00:00 +0000\nSubject: minutes\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"fw-in\"\n\n--fw-in\nContent-Type: text/plain\n\nminutes attached\n--fw-in\n" + att('attachment; filename="minutes.pdf"', "application/pdf", "base64", PDF) + "--fw-in--\n"
cw("forwarded-rfc822", mixed(104, ["Content-Type: text/plain\n\nFYI, see below.\n", 'Content-Type: message/rfc822\nContent-Disposition: attachment; filename="minutes.eml"\n\n' + fwd_inner]))
utf = H.format(n=105) + "Subject: =?utf-8?Q?Caf=C3=A9_r=C3=A9sum=C3=A9?=\n" + 'Content-Type: multipart/mixed; boundary="u8"\n\n--u8\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nBonjour, voilà mon résumé — ☕\n--u8\n' + "Content-Type: application/pdf; name=\"=?utf-8?Q?r=C3=A9sum=C3=A9.pdf?=\"\nContent-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\nContent-Transfer-Encoding: base64\n\n" + PDF + "--u8--\n"
cw("utf8-everywhere", utf)
cw("zip-harmless", mixed(106, [TEXT, att('attachment; filename="data.zip"', "application/zip", "base64", b64(zipbytes(["readme.txt", "data/table.csv", "img/logo.png"])))]))
cw("qp-soft-breaks", hdr(107) + "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nA long line that was wrapped by the quoted-printable encoder because it is lo=\nnger than seventy-six characters, with an accented letter: caf=E9.\n")
cw("related-inline-image", hdr(108) + 'Content-Type: multipart/related; boundary="rel"; type="text/html"\n\n--rel\nContent-Type: text/html; charset=us-ascii\n\n<img src="cid:logo@x">\n--rel\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Disposition: inline; filename="logo.png"\nContent-Transfer-Encoding: base64\n\n' + b64(b"\x89PNG\r\n\x1a\n" + bytes(64)) + "--rel--\n")
cw("nested-mixed-alt-related", mixed(109, ['Content-Type: multipart/alternative; boundary="a2"\n\n--a2\nContent-Type: text/plain\n\nhi\n--a2\nContent-Type: multipart/related; boundary="r2"\n\n--r2\nContent-Type: text/html\n\n<b>hi</b>\n--r2--\n--a2--\n', att('attachment; filename="notes.txt"', "text/plain", "7bit", "just notes\n")]))
cw("begin-words-not-uuencode", hdr(110) + "Content-Type: text/plain\n\nbegin the meeting at 10\nbegin 10 minutes late\nbeginning is fine\n")
cw("outlook-style-names", mixed(111, [TEXT, "Content-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;\n\tname=\"=?iso-8859-1?Q?Offre_d=27emploi_r=E9vis=E9e.docx?=\"\nContent-Disposition: attachment;\n\tfilename*=iso-8859-1''Offre%20d%27emploi%20r%E9vis%E9e.docx\nContent-Transfer-Encoding: base64\n\n" + PDF]))
cw("smime-signed", hdr(112) + 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"\n\n--sig\nContent-Type: text/plain\n\nsigned text\n--sig\nContent-Type: application/pkcs7-signature; name="smime.p7s"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="smime.p7s"\n\n' + b64(b"0\x82\x01\x00" + bytes(60)) + "--sig--\n")
cw("calendar-invite", mixed(113, ["Content-Type: text/plain\n\nInvitation\n", 'Content-Type: text/calendar; method=REQUEST; charset=utf-8; name="invite.ics"\nContent-Transfer-Encoding: 7bit\n\nBEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n']))
cw("long-folded-headers", hdr(114).replace("Subject: test", "Subject: a subject that is folded\n over two lines") + "Received: from a by b;\n\tMon, 1 Jan 2024 10:00:00 +0000\nContent-Type: text/plain\n\nok\n")
cw("continuation-in-order", mixed(115, [TEXT, att("attachment; filename*0*=utf-8''Quarterly%20; filename*1=\"report 2024.pdf\"", "application/pdf", "base64", PDF)]))

with open(os.path.join(HERE, "MANIFEST"), "w") as f:
    f.write("# path verdict rule [exim=VERDICT] — written by build_small.py; large cases come from generate.py\n")
    f.write("\n".join(entries) + "\n")
print(f"{h} hostile, {c} clean")
