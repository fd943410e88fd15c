"""Read the files of cs (cs-formats(5)) from Python.

Standard library only, plus the zstandard module (Debian's
python3-zstandard) for sequence streams; numpy, when installed, gives model
tensors as arrays of their shapes.

    import csio
    s = csio.Stream("oct.cseq")           # or a binary file object, e.g. sys.stdin.buffer
    s.fields                              # [("user", "seq", "string", 0), ...]
    s.meta                                # {"source": "kaggle", ...}
    for rec in s:                         # {"user": "u1", "item": ["a", "b"], ...}
        ...
    v = csio.read_vocab("vocab.txt")      # {"item": Section(tokens, counts, fingerprint)}
    v["item"].tokens[rec["item"][0]]      # an id's token
    meta, tensors = csio.read_model("model.bin")   # tensors: name -> numpy array (or list)
    meta, tensors = csio.read_safetensors("model.safetensors")   # cs-export's output

Run as a script, it prints a stream as cs-cat -J does (JSON lines).
"""
import json
import math
import struct
import sys

TYPES = ("string", "id", "int64", "float32")
LEVELS = ("seq", "event")


class FormatError(ValueError):
    """The file is not a valid cs file (bad magic, truncated, corrupt)."""


class _Reader:
    """Exact reads from a binary file object; a short read is an error."""

    def __init__(self, fp, name):
        self.fp, self.name = fp, name

    def read(self, n):
        b = self.fp.read(n)
        while len(b) < n:
            more = self.fp.read(n - len(b))
            if not more:
                raise FormatError("%s: truncated (wanted %d bytes, got %d)" % (self.name, n, len(b)))
            b += more
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))


class Stream:
    """A sequence stream: its schema (fields, meta) and its records, in order."""

    VERSION = 1

    def __init__(self, src):
        import zstandard

        if isinstance(src, str):
            self.name, self._file = src, open(src, "rb")
        else:
            self.name, self._file = getattr(src, "name", "-"), src
        dec = zstandard.ZstdDecompressor()
        self._r = _Reader(dec.stream_reader(self._file, read_across_frames=True), self.name)
        magic = self._r.read(4)
        if magic != b"CSSQ":
            raise FormatError("%s: not a sequence stream (magic %r)" % (self.name, magic))
        version, size = self._r.unpack("<II")
        if version > self.VERSION:
            raise FormatError("%s: stream version %d is newer than %d: upgrade" % (self.name, version, self.VERSION))
        schema = _Reader(_Bytes(self._r.read(size)), self.name)
        (n,) = schema.unpack("<I")
        self.fields = []
        for _ in range(n):
            level, typ, nlen = schema.unpack("<BBH")
            name = schema.read(nlen).decode()
            (fp,) = schema.unpack("<Q")
            self.fields.append((name, LEVELS[level], TYPES[typ], fp))
        (nmeta,) = schema.unpack("<I")
        self.meta = {}
        for _ in range(nmeta):
            (klen,) = schema.unpack("<H")
            key = schema.read(klen).decode()
            (vlen,) = schema.unpack("<I")
            self.meta[key] = schema.read(vlen).decode(errors="surrogateescape")
        self.records = self.events = 0

    def __iter__(self):
        r = self._r
        while True:
            tag = r.read(1)
            if tag == b"E":
                nrec, nev = r.unpack("<QQ")
                if (nrec, nev) != (self.records, self.events):
                    raise FormatError("%s: trailer counts %d records, %d events; read %d, %d"
                                      % (self.name, nrec, nev, self.records, self.events))
                if r.fp.read(1):
                    raise FormatError("%s: bytes after the trailer" % self.name)
                return
            if tag != b"R":
                raise FormatError("%s: record %d: bad tag %r" % (self.name, self.records + 1, tag))
            (size,) = r.unpack("<I")
            yield self._record(r.read(size))

    def _record(self, payload):
        p = _Reader(_Bytes(payload), self.name)
        (n,) = p.unpack("<I")
        rec = {}
        for name, level, typ, _ in self.fields:
            k = 1 if level == "seq" else n
            if typ == "string":
                lens = p.unpack("<%dI" % k)
                vals = [p.read(x).decode(errors="surrogateescape") for x in lens]
            elif typ == "id":
                vals = list(p.unpack("<%dI" % k))
            elif typ == "int64":
                vals = list(p.unpack("<%dq" % k))
            else:
                vals = list(p.unpack("<%df" % k))
            rec[name] = vals[0] if level == "seq" else vals
        if p.fp.read(1):
            raise FormatError("%s: record %d: bytes after its fields" % (self.name, self.records + 1))
        self.records += 1
        self.events += n
        return rec


class _Bytes:
    """A bytes buffer read like a file."""

    def __init__(self, b):
        self.b, self.i = b, 0

    def read(self, n):
        out = self.b[self.i:self.i + n]
        self.i += len(out)
        return out


class Section:
    """One field of a vocabulary: tokens and counts by id, and its fingerprint (16 hex digits)."""

    def __init__(self, name, fingerprint):
        self.name, self.fingerprint = name, fingerprint
        self.tokens, self.counts = [], []

    def id(self, token):
        if not hasattr(self, "_ids"):
            self._ids = {t: i for i, t in enumerate(self.tokens) if i >= 3}
        return self._ids.get(token, 2)  # [UNK]


def read_vocab(path, check=True):
    """A vocabulary file of cs-vocab: {field: Section}; check: recompute the fingerprints."""
    out, sec, line_no = {}, None, 0
    with open(path, "rb") as f:
        for raw in f:
            line_no += 1
            line = raw.rstrip(b"\n").decode(errors="surrogateescape")
            if line_no == 1:
                if not line.startswith("# cs-vocab "):
                    raise FormatError("%s:1: not a vocabulary file" % path)
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if cols[0] == "field":
                sec = out[cols[1]] = Section(cols[1], cols[3])
                sec.size = int(cols[2])
            elif sec is not None and len(cols) == 3 and int(cols[0]) == len(sec.tokens):
                sec.tokens.append(cols[1])
                sec.counts.append(int(cols[2]))
            else:
                raise FormatError("%s:%d: bad line" % (path, line_no))
    for s in out.values():
        if len(s.tokens) != s.size:
            raise FormatError("%s: section %s has %d tokens, says %d" % (path, s.name, len(s.tokens), s.size))
        if check and "%016x" % vocab_fingerprint(s.name, s.tokens) != s.fingerprint:
            raise FormatError("%s: section %s does not match its fingerprint" % (path, s.name))
    return out


def vocab_fingerprint(name, tokens):
    """The fingerprint of a vocabulary section (cs-formats(5))."""
    h = _fnv1a(name.encode() + b"\0")
    for t in tokens:
        b = t.encode(errors="surrogateescape")
        h = _fnv1a(struct.pack("<I", len(b)) + b, h)
    return h or 1


def _fnv1a(b, h=0xCBF29CE484222325):
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


_M64 = 0xFFFFFFFFFFFFFFFF
_P1, _P2, _P3, _P4, _P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                           0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _xround(acc, v):
    return _rotl((acc + v * _P2) & _M64, 31) * _P1 & _M64


def xxh64(b, seed=0):
    """XXH64 of the bytes b (xxHash's 64-bit hash)."""
    n, i = len(b), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64]
        for a, c, d, e in struct.iter_unpack("<4Q", b[:n - n % 32]):
            v = [_xround(v[0], a), _xround(v[1], c), _xround(v[2], d), _xround(v[3], e)]
        i = n - n % 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for x in v:
            h = ((h ^ _xround(0, x)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while i + 8 <= n:
        (k,) = struct.unpack_from("<Q", b, i)
        h = (_rotl(h ^ _xround(0, k), 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        (k,) = struct.unpack_from("<I", b, i)
        h = (_rotl(h ^ (k * _P1 & _M64), 23) * _P2 + _P3) & _M64
        i += 4
    for c in b[i:]:
        h = _rotl(h ^ (c * _P5 & _M64), 11) * _P1 & _M64
    h = (h ^ (h >> 33)) * _P2 & _M64
    h = (h ^ (h >> 29)) * _P3 & _M64
    return h ^ (h >> 32)


MODEL_VERSION = 2


def model_checksum(version, b):
    """The checksum a model file of this version holds for its bytes b (all but the last 8):
    XXH64 from version 2 on, FNV-1a in version 1 (cs-formats(5))."""
    return xxh64(b) if version >= 2 else _fnv1a(b)


def _shaped(name, values, meta):
    """values as a numpy array of the shape in meta["shape.NAME"] (a list without numpy)."""
    try:
        import numpy
    except ImportError:
        return list(struct.unpack("<%df" % (len(values) // 4), values))
    a = numpy.frombuffer(values, dtype="<f4")
    shape = meta.get("shape." + name)
    return a.reshape([int(d) for d in shape.split(",")]) if shape else a


def read_model(path):
    """A model file of cs-train: (metadata dict, {tensor name: array})."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 16 or data[:4] != b"CSMF":
        raise FormatError("%s: not a model file" % path)
    (stored,) = struct.unpack_from("<Q", data, len(data) - 8)
    (version,) = struct.unpack_from("<I", data, 4)
    if version > MODEL_VERSION:
        raise FormatError("%s: model file version %d is newer than %d: upgrade"
                          % (path, version, MODEL_VERSION))
    if model_checksum(version, data[:-8]) != stored:
        raise FormatError("%s: checksum mismatch (corrupt or truncated)" % path)
    r = _Reader(_Bytes(data[8:-8]), path)
    (nmeta,) = r.unpack("<I")
    meta = {}
    for _ in range(nmeta):
        (klen,) = r.unpack("<H")
        key = r.read(klen).decode()
        (vlen,) = r.unpack("<I")
        meta[key] = r.read(vlen).decode()
    (nt,) = r.unpack("<I")
    tensors = {}
    for _ in range(nt):
        (nlen,) = r.unpack("<H")
        name = r.read(nlen).decode()
        (n,) = r.unpack("<Q")
        tensors[name] = _shaped(name, r.read(4 * n), meta)
    return meta, tensors


def read_safetensors(path):
    """A safetensors file (cs-export): (metadata dict, {name: numpy array})."""
    import numpy

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise FormatError("%s: %s is %s, not F32" % (path, name, t["dtype"]))
        b, e = t["data_offsets"]
        out[name] = numpy.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"])
    return meta, out


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def main(argv):
    src = argv[1] if len(argv) > 1 and argv[1] != "-" else sys.stdin.buffer
    s = Stream(src)
    for rec in s:
        print(json.dumps({k: ([_json_value(x) for x in v] if isinstance(v, list) else _json_value(v))
                          for k, v in rec.items()}, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except (FormatError, OSError) as e:
        print("csio: %s" % e, file=sys.stderr)
        sys.exit(1)
