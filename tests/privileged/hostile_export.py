#!/usr/bin/env python3
"""Builds hostile chrootctl export archives for the host-boundary tests (issue 18), with
Python's tarfile, independently of chrootctl: the manifest is written here from the format in
docs/manifest.md, so an archive is only as consistent as a scenario wants it to be.

    hostile_export.py OUT.tar.zst SCENARIO

Scenarios (all unsigned; import them with --allow-unsigned):
  clean        a small tree, consistent: it imports
  privileged   a setuid-root script, a file with cap_setuid, a 0666 device node (c 1,1)
  extra-big    consistent, plus a 2 GiB file of zeros that the manifest does not list, first in root/
  oversize     the manifest says /etc/motd has 6 bytes; the archive's entry has 1 GiB
  sparse       /big: a pax (GNU 0.1) sparse file of 10 TiB, listed with that size
  mismatch     /etc/motd's contents differ from the manifest; a later entry follows
  big-member   chrootctl-export.toml of 1 MiB
  control      control bytes in headers: a member named with ESC, BEL and 0xff before root/
  control-toml chrootctl-export.toml holding raw ESC, BEL and 0xff
  control-manifest  a manifest line holding raw ESC, BEL, NUL and 0xff
"""
import base64
import hashlib
import io
import subprocess
import sys
import tarfile

MTIME = 1700000000
NAME, RECIPE, BUILD_ID = "HOSTILE", "hostile", "h1"
# VFS capability v2: cap_setuid (bit 7) permitted and effective.
CAP_SETUID = bytes([0x01, 0x00, 0x00, 0x02, 0x80, 0x00, 0x00, 0x00] + [0] * 12)


def esc(raw: bytes) -> str:
    """The manifest's byte escaping: everything outside 0x21..0x7e, and '\\', as \\xHH."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b != 0x5C else "\\x%02x" % b for b in raw)


class Tree:
    def __init__(self):
        self.entries = []  # (path bytes, dict)

    def dir(self, path, mode=0o755):
        self.entries.append((path, dict(type="d", mode=mode)))

    def file(self, path, data, mode=0o644, xattrs=None, uid=0, gid=0):
        self.entries.append((path, dict(type="f", mode=mode, data=data, xattrs=xattrs or {}, uid=uid, gid=gid)))

    def chardev(self, path, major, minor, mode=0o666):
        self.entries.append((path, dict(type="c", mode=mode, rdev=(major, minor))))

    def manifest(self, override=None):
        """The canonical manifest text and its tree digest; `override` maps a path to fields to change."""
        override = override or {}
        lines = []
        for path, e in sorted(self.entries, key=lambda x: x[0]):
            e = dict(e, **override.get(path, {}))
            fields = [esc(path), "type=" + e["type"], "mode=%04o" % e["mode"], "uid=%d" % e.get("uid", 0), "gid=%d" % e.get("gid", 0)]
            if e["type"] == "f":
                size = e.get("size", len(e["data"]))
                sha = e.get("sha256") or hashlib.sha256(e["data"]).hexdigest()
                fields += ["size=%d" % size, "sha256=" + sha]
            if e["type"] == "c":
                fields.append("rdev=%d,%d" % e["rdev"])
            for name in sorted(e.get("xattrs", {})):
                fields.append("xattr.%s=%s" % (esc(name.encode()).replace("=", "\\x3d"), base64.b64encode(e["xattrs"][name]).decode()))
            lines.append(" ".join(fields))
        h = hashlib.sha256()
        h.update(b"#chrootctl-manifest 1\n")
        for l in lines:
            h.update(l.encode() + b"\n")
        digest = h.hexdigest()
        text = "#chrootctl-manifest 1\n" + "".join("%s mtime=%d.000000000\n" % (l, MTIME) for l in lines)
        text += "#end entries=%d sha256=%s\n" % (len(lines), digest)
        return text.encode(), digest


def info(name, size=0, mode=0o644, kind=tarfile.REGTYPE):
    t = tarfile.TarInfo(name)
    t.size, t.mode, t.type, t.mtime, t.uid, t.gid, t.uname, t.gname = size, mode, kind, MTIME, 0, 0, "", ""
    return t


class Zeros(io.RawIOBase):
    """n zero bytes, read without holding them in memory."""
    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def write(out, members):
    """members: (TarInfo, file object or bytes or None); written through zstd without holding the archive in memory."""
    z = subprocess.Popen(["zstd", "-q", "-3", "-f", "-o", out], stdin=subprocess.PIPE)
    with tarfile.open(fileobj=z.stdin, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as t:
        for ti, data in members:
            if isinstance(data, bytes):
                data = io.BytesIO(data)
            t.addfile(ti, data)
    z.stdin.close()
    if z.wait() != 0:
        sys.exit("zstd failed")


def tree_members(tree, skip=()):
    out = [(info("root", mode=0o755, kind=tarfile.DIRTYPE), None)]
    for path, e in sorted(tree.entries, key=lambda x: x[0]):
        if path == b"/" or path in skip:
            continue
        name = "root" + path.decode("utf-8", "surrogateescape")
        if e["type"] == "d":
            out.append((info(name, mode=e["mode"], kind=tarfile.DIRTYPE), None))
        elif e["type"] == "c":
            ti = info(name, mode=e["mode"], kind=tarfile.CHRTYPE)
            ti.devmajor, ti.devminor = e["rdev"]
            out.append((ti, None))
        else:
            ti = info(name, size=len(e["data"]), mode=e["mode"])
            ti.uid, ti.gid = e.get("uid", 0), e.get("gid", 0)
            # Binary values as libarchive writes them: LIBARCHIVE.xattr.NAME = base64.
            for k, v in e["xattrs"].items():
                ti.pax_headers["LIBARCHIVE.xattr." + k] = base64.b64encode(v).decode()
            out.append((ti, e["data"]))
    return out


def head(manifest, digest, entry_extra=b"", entry=None):
    recipe = ('name = "%s"\n' % RECIPE).encode()
    lock = ('format = 1\nname = "%s"\nbuild_id = "%s"\n' % (RECIPE, BUILD_ID)).encode()
    if entry is None:
        entry = ('# chrootctl image export (docs/signing.md)\nformat = 1\nname = "%s"\nrecipe = "%s"\nbuild_id = "%s"\n'
                 'digest = "%s"\naliases = []\nexported_at = %d\n' % (NAME, RECIPE, BUILD_ID, digest, MTIME)).encode() + entry_extra
    return [(info("chrootctl-export.toml", len(entry)), entry), (info("manifest", len(manifest)), manifest),
            (info("lock", len(lock)), lock), (info("recipe.toml", len(recipe)), recipe)]


def base_tree():
    t = Tree()
    t.dir(b"/")
    t.dir(b"/bin")
    t.dir(b"/etc")
    t.file(b"/etc/motd", b"hello\n")
    t.file(b"/bin/job", b"#!/bin/sh\necho job\n", 0o755)
    return t


def main():
    out, scenario = sys.argv[1], sys.argv[2]
    t = base_tree()
    if scenario == "privileged":
        t.dir(b"/dev")
        t.file(b"/bin/rootsh", b"#!/bin/sh\nid -u\n", 0o4755)
        t.file(b"/bin/capsh", b"#!/bin/sh\nid -u\n", 0o755, {"security.capability": CAP_SETUID})
        t.chardev(b"/dev/mem", 1, 1, 0o666)
    if scenario == "sparse":
        t.file(b"/big", b"", 0o644)
    manifest, digest = t.manifest({b"/big": dict(size=10 << 40, sha256="0" * 64)} if scenario == "sparse" else None)
    members = head(manifest, digest)
    body = tree_members(t)
    if scenario == "extra-big":
        ti = info("root/aaa-extra", 2 << 30)
        body.insert(1, (ti, Zeros(2 << 30)))
    elif scenario == "oversize":
        body = [(info(ti.name, 1 << 30, ti.mode), Zeros(1 << 30)) if ti.name == "root/etc/motd" else (ti, d) for ti, d in body]
    elif scenario == "sparse":
        body = [(ti, d) for ti, d in body if ti.name != "root/big"]
        ti = info("root/big", 4096)
        ti.pax_headers.update({"GNU.sparse.size": str(10 << 40), "GNU.sparse.numblocks": "1", "GNU.sparse.offset": "0",
                               "GNU.sparse.numbytes": "4096", "GNU.sparse.map": "0,4096"})
        body.append((ti, bytes(4096)))
    elif scenario == "mismatch":
        body = [(ti, b"hellO\n") if ti.name == "root/etc/motd" else (ti, d) for ti, d in body]
    elif scenario == "big-member":
        members = head(manifest, digest, b"# " + b"x" * (1 << 20) + b"\n")
    elif scenario == "control":
        odd = "evil\x1b]0;owned\x07\udcff"
        members.insert(2, (info(odd, 1), b"x"))
    elif scenario == "control-toml":
        members = head(manifest, digest, entry=b'format = 1\nname = "\x1b]0;owned\x07\xff"\n')
    elif scenario == "control-manifest":
        bad = manifest.replace(b"/etc/motd type=f", b"/etc/mo\x1b[2J\x07\x00\xfftd type=f")
        members = head(bad, digest)
    elif scenario not in ("clean", "privileged"):
        sys.exit("unknown scenario " + scenario)
    write(out, members + body)


if __name__ == "__main__":
    main()
