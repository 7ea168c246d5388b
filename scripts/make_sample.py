#!/usr/bin/env python3
"""Cut the bundled sample (data/sample/) from the shared data: the first N events of each class file.

  python3 scripts/make_sample.py --source ../shared/data/jets --out data/sample/jets -n 4000

Standard library only: reads the .npy header, copies the first N rows, writes a new header (gzip).
"""
import argparse, ast, gzip, pathlib, struct


def read_npy(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", f"{path}: not a .npy file"
    major = data[6]
    hlen, start = (struct.unpack("<H", data[8:10])[0], 10) if major == 1 else (struct.unpack("<I", data[8:12])[0], 12)
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    assert header["descr"] == "<f4" and not header["fortran_order"], f"{path}: expected float32 C order"
    return header["shape"], data[start + hlen:]


def npy_bytes(shape, payload):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join(f"{d}, " for d in shape)
    pad = 64 - (10 + len(header) + 1) % 64
    header = (header + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, type=pathlib.Path)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("-n", type=int, default=4000, help="events per class")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(a.source.glob("*.npy.gz")):
        shape, payload = read_npy(path)
        n = min(a.n, shape[0])
        row = 4
        for d in shape[1:]:
            row *= d
        out = a.out / path.name
        with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
            f.write(npy_bytes((n,) + tuple(shape[1:]), payload[:n * row]))
        print(f"{out}: {n} of {shape[0]} events")


if __name__ == "__main__":
    main()
