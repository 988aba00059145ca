#!/usr/bin/python3
"""bombs.py — archives that cost a careless lister CPU or hide names (issue 14),
built by hand so every field is the one wanted: data descriptors, names in one
zip view only, members that are zips.  Used by tests/integration/test_scan_bombs.py,
bench/scan/bombs and as fuzz seeds (tests/fuzz/corpus/archive/).

  bombs.py OUTDIR [--small]   write each zip bomb as OUTDIR/NAME.zip and a
                              message OUTDIR/NAME.eml carrying it

Zip layout (APPNOTE 6.3.x §4.3): local header + data [+ data descriptor]
per member, then the central directory and its end record.  A member's
"local" and "central" names may differ or be absent from one view.
"""
import base64
import os
import struct
import sys
import zlib

MiB = 1024 * 1024


def deflate_zeros(n):
    """A raw deflate stream of n zero bytes and its CRC-32, made fast: a
    fully flushed 8 MiB segment does not refer back, so it can be repeated."""
    seg = 8 * MiB
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = z.compress(b"\0" * seg) + z.flush(zlib.Z_FULL_FLUSH)
    out = [block] * (n // seg)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    out.append(z.compress(b"\0" * (n % seg)) + z.flush())
    crc, zero = 0, b"\0" * MiB
    for _ in range(n // MiB):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(b"\0" * (n % MiB), crc)
    return b"".join(out), crc


def member(name, data=None, *, zeros=0, method=8, dd=False, local=True, central=True,
           central_name=None):
    """One zip member: DATA (bytes) or ZEROS zero bytes, stored (0) or
    deflated (8), sizes in a data descriptor (dd) or in the local header."""
    if zeros:
        comp, crc = deflate_zeros(zeros)
        usize = zeros
        assert method == 8
    else:
        data = data or b""
        crc, usize = zlib.crc32(data), len(data)
        comp = data if method == 0 else zlib.compress(data, 9)[2:-4]
    return dict(name=name.encode(), cname=(central_name or name).encode(), comp=comp, crc=crc,
                usize=usize, method=method, dd=dd, local=local, central=central)


def zip_bytes(members):
    out, cd, n = bytearray(), bytearray(), 0
    last_local = 0
    for m in members:
        flags = 0x08 if m["dd"] else 0
        if m["local"]:
            last_local = len(out)
            hs = (0, 0, 0) if m["dd"] else (m["crc"], len(m["comp"]), m["usize"])
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, m["method"], 0, 0x21,
                               *hs, len(m["name"]), 0) + m["name"] + m["comp"]
            if m["dd"]:
                out += struct.pack("<IIII", 0x08074B50, m["crc"], len(m["comp"]), m["usize"])
        if m["central"]:
            cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, m["method"], 0,
                              0x21, m["crc"], len(m["comp"]), m["usize"], len(m["cname"]), 0, 0,
                              0, 0, 0, last_local) + m["cname"]
            n += 1
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), len(out), 0)
    return bytes(out + cd + eocd)


def message(attname, data, ctype="application/zip"):
    b64 = base64.encodebytes(data).decode()
    return ("From: Mallory <m@example.org>\nTo: bob@home.com.bo\n"
            "Date: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <bomb@example.org>\n"
            "Subject: bomb\nMIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="b"\n\n--b\n'
            "Content-Type: text/plain\n\nsee attachment\n--b\n"
            f'Content-Type: {ctype}; name="{attname}"\n'
            f'Content-Disposition: attachment; filename="{attname}"\n'
            "Content-Transfer-Encoding: base64\n\n" + b64 + "--b--\n").encode()


def sevenzip(members, solid=True):
    """A 7z archive written by libarchive (ctypes; LZMA, one solid block):
    members are (name, bytes).  Skipping a member of a solid block means
    decompressing it, which is what the 7z bomb relies on."""
    import ctypes
    la = ctypes.CDLL("libarchive.so.13")
    la.archive_write_new.restype = ctypes.c_void_p
    la.archive_entry_new.restype = ctypes.c_void_p
    for f in ("archive_write_set_format_7zip", "archive_write_close", "archive_write_free"):
        getattr(la, f).argtypes = [ctypes.c_void_p]
    la.archive_write_set_format_option.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                   ctypes.c_char_p, ctypes.c_char_p]
    la.archive_write_open_memory.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                             ctypes.POINTER(ctypes.c_size_t)]
    la.archive_entry_set_pathname.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    la.archive_entry_set_size.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    la.archive_entry_set_filetype.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    la.archive_entry_set_perm.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    la.archive_entry_free.argtypes = [ctypes.c_void_p]
    la.archive_write_header.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    la.archive_write_data.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    cap = 1024 * 1024 + sum(len(d) for _, d in members) // 100
    buf = ctypes.create_string_buffer(cap)
    used = ctypes.c_size_t(0)
    a = la.archive_write_new()
    la.archive_write_set_format_7zip(a)
    la.archive_write_set_format_option(a, b"7zip", b"compression", b"lzma1")
    assert la.archive_write_open_memory(a, buf, cap, ctypes.byref(used)) == 0
    for name, data in members:
        e = la.archive_entry_new()
        la.archive_entry_set_pathname(e, name.encode())
        la.archive_entry_set_size(e, len(data))
        la.archive_entry_set_filetype(e, 0o100000)
        la.archive_entry_set_perm(e, 0o644)
        la.archive_write_header(a, e)
        la.archive_write_data(a, data, len(data))
        la.archive_entry_free(e)
    la.archive_write_close(a)
    la.archive_write_free(a)
    return buf.raw[:used.value]


def bombs(big=2000 * MiB, many=(400, 512 * 1024)):
    """NAME -> (attachment name, bytes, what it tests).  big: bytes of the
    single-member bombs (the issue's 2,000 MiB by default); many: members and
    bytes each of the many-members bomb."""
    dd = zip_bytes([member("zeros.bin", zeros=big, dd=True)])
    return {
        "flat": ("flat.zip", zip_bytes([member("zeros.bin", zeros=big)]),
                 "sizes in the local header: the streaming view reads it anyway"),
        "dd": ("dd.zip", dd, "data descriptor: the streaming view inflates it to skip it"),
        "nested": ("nested.zip", zip_bytes([member("inner.zip", dd)]),
                   "a deflated zip holding the data-descriptor bomb (a few KB)"),
        "many": ("many.zip", zip_bytes([member(f"f{i}.txt", zeros=many[1], dd=True)
                                        for i in range(many[0])]),
                 f"{many[0]} data-descriptor members of {many[1]} bytes each"),
    }


def write(outdir, **kw):
    os.makedirs(outdir, exist_ok=True)
    for name, (att, data, _) in bombs(**kw).items():
        with open(os.path.join(outdir, att), "wb") as f:
            f.write(data)
        with open(os.path.join(outdir, name + ".eml"), "wb") as f:
            f.write(message(att, data))


if __name__ == "__main__":
    if "--small" in sys.argv:
        write(sys.argv[1], big=2 * MiB, many=(40, 64 * 1024))
    else:
        write(sys.argv[1])
