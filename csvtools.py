"""
csvtools.py: reading a researcher's CSV files for the economics tools (rationality.py --data, infoflow.py --beliefs)
and writing their per-subject or per-game results. A bad file gives one line naming the row (InputError: exit 2,
nothing written), never a traceback and never a wrong answer.
"""
import contextlib, csv, io
from pathlib import Path

import numpy as np


class InputError(Exception):
    """Bad CSV input: one line with the row number, exit code 2, nothing written."""

def read_csv(path, check_header):
    """(header, keys (n,), values (n, m) floats, rows (n,)) from a CSV whose first column is a key and the
    others numbers; rows are spreadsheet row numbers (the header is row 1), blank rows skipped. UTF-8 with or
    without a byte-order mark (an Excel export). check_header(header) raises InputError."""
    try:
        raw = Path(path).read_bytes()
        reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        row = raw[:e.start].count(b"\n") + 1
        raise InputError(f"row {row}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as CSV UTF-8") from None
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise InputError(f"{path} is empty")
    check_header(header)
    keys, rows, cells = [], [], []
    for row in (row for row in reader if any(c.strip() for c in row)):
        if len(row) != len(header):
            raise InputError(f"row {reader.line_num}: {len(row)} fields, expected {len(header)}")
        keys.append(row[0].strip()), rows.append(reader.line_num), cells.append(row[1:])
    if not keys:
        raise InputError(f"{path} has a header but no rows")
    try:
        values = np.array(cells, dtype=np.float64).reshape(len(cells), len(header) - 1)
    except ValueError:
        row, c = next((r, c) for r, c in zip(rows, cells) if not all(is_number(v) for v in c))
        raise InputError(f"row {row}: {', '.join(header[1:])} must be numbers, got {','.join(c)}") from None
    return header, np.array(keys), values, np.array(rows)

def is_number(text):
    with contextlib.suppress(ValueError):
        return float(text) is not None
    return False

def first_bad_row(rows, checks):
    """Raise InputError for the earliest row failing one of checks [(bad mask, message), ...]."""
    found = [(rows[np.argmax(bad)], message) for bad, message in checks if bad.any()]
    if found:
        raise InputError("row {}: {}".format(*min(found, key=lambda f: f[0])))

def group_rows(keys, rows, what, min_rows=2, max_rows=None):
    """Row indices per key, in order of first appearance; too few (or too many) rows is an error."""
    names, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    groups = dict(zip(names, np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])))
    for k in np.argsort(first):
        where = f"row {rows[first[k]]}: {what} '{names[k]}' has"
        if counts[k] < min_rows:
            raise InputError(f"{where} {counts[k]} row(s); need at least {min_rows}")
        if max_rows and counts[k] > max_rows:
            raise InputError(f"{where} {counts[k]:,} observations; the dense T x T method takes at most "
                             f"{max_rows:,} per {what}")
    return {names[k]: groups[names[k]] for k in np.argsort(first)}
