"""
csvtools.py: reading a researcher's CSV files for the economics tools (rationality.py --data, infoflow.py --beliefs)
and writing their per-subject or per-game results. A bad file gives one line naming the row (InputError: exit 2,
nothing written), never a traceback and never a wrong answer.

read_csv takes a file as a spreadsheet saves it:
- UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"); line ends \\n, \\r\\n (Windows) or \\r (old Mac);
- fields separated by ',', ';' or tab, whichever the header line holds most of (outside quotes); with ';' or tab a
  decimal comma is read as a point (1,5 is 1.5: the European Excel export);
- header names in any case with spaces around them, a trailing separator (an empty last column), and other names
  mapped onto ours by rename (parse_column_map reads a tool's --columns=their=ours,...);
- quoted fields ("Smith, J"); blank rows are skipped.
Every message names a spreadsheet row (the header is row 1), and each check reports the earliest bad row.
"""
import contextlib, csv, io, re
from pathlib import Path

import numpy as np

import train

MAX_ABS = 1e100  # products of larger values overflow (1e300 * 1e300 = inf) and the indices come out wrong
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}  # on a tie, the first
DECIMAL_COMMA = re.compile(r"\s*-?\d+,\d+\s*")
BOM = b"\xef\xbb\xbf"


class InputError(Exception):
    """Bad CSV input: one line with the row number, exit code 2, nothing written."""


def read_text(path):
    """The file as text: byte-order mark dropped, every line end \\n."""
    try:
        raw = Path(path).read_bytes().removeprefix(BOM)
        return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        row = raw[:e.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
        raise InputError(f"row {row}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as CSV UTF-8") from None


def records(text, sep):
    """(spreadsheet row, fields) for every row, blank ones included; a csv.Error becomes an InputError."""
    reader, row = csv.reader(io.StringIO(text), delimiter=sep), 1
    while True:
        try:
            yield row, next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(f"row {row}: {e}") from None
        row += 1


def read_csv(path, check_header, rename=None):
    """(header, keys (n,), values (n, m) floats, rows (n,)) from a CSV whose first column is a key and the others
    numbers. Header names are stripped, lower case, then renamed by rename {their_name: our_name}; check_header
    (header) raises InputError. rows are spreadsheet row numbers. NaN and inf are the caller's to check."""
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path} is empty")
    sep = max(SEPARATORS, key=re.sub(r'"[^"]*"', "", text.split("\n", 1)[0]).count)
    read_as = f" (read as {SEPARATORS[sep]}-separated)"
    rows_in = records(text, sep)
    header = [h.strip().lower() for h in next(rows_in)[1]]
    if not any(header):
        raise InputError("row 1: no column names; the header must be the first row")
    width, trailing = len(header), len(header) > 1 and header[-1] == ""
    header = header[:-1] if trailing else header
    rename = {a.strip().lower(): b.strip().lower() for a, b in (rename or {}).items()}
    missing = [a for a in rename if a not in header]
    if missing:
        raise InputError(f"row 1: the column map names '{missing[0]}', not a column of the file ({','.join(header)})")
    header = [rename.get(h, h) for h in header]
    try:
        check_header(header)
    except InputError as e:
        raise InputError(f"{e}{read_as}") from None
    keys, rows, cells = [], [], []
    for n, row in rows_in:
        if not any(c.strip() for c in row):
            continue
        if len(row) != width:
            raise InputError(f"row {n}: {len(row)} fields, expected {width}{read_as}")
        if trailing and row[-1].strip():
            raise InputError(f"row {n}: a value ({row[-1].strip()}) under the header's empty last column")
        fields = row[1:len(header)]
        if sep != ",":
            fields = [f.replace(",", ".") if DECIMAL_COMMA.fullmatch(f) else f for f in fields]
        keys.append(row[0].strip()), rows.append(n), cells.append(fields)
    if not keys:
        raise InputError(f"{path} has a header but no rows")
    try:
        values = np.array(cells, dtype=np.float64).reshape(len(cells), len(header) - 1)
    except ValueError:
        row, c = next((r, c) for r, c in zip(rows, cells) if not all(is_number(v) for v in c))
        raise InputError(f"row {row}: {', '.join(header[1:])} must be numbers, got {sep.join(c)}{read_as}") from None
    finite = np.isfinite(values)
    huge = (finite & (np.abs(values) > MAX_ABS)).any(1)
    if huge.any() and finite[:huge.argmax()].all():  # an earlier NaN or inf: the caller reports that row first
        raise InputError(f"row {rows[huge.argmax()]}: |value| above {MAX_ABS:g}; rescale the units")
    return header, np.array(keys), values, np.array(rows)


def parse_column_map(text):
    """{their_name: our_name} from "their=ours,their2=ours2" (a tool's --columns=...); "" is no map."""
    pairs = [p.split("=") for p in text.split(",")] if text.strip() else []
    pairs = [[s.strip().lower() for s in p] for p in pairs]
    if any(len(p) != 2 or not all(p) for p in pairs) or any(len({p[i] for p in pairs}) < len(pairs) for i in (0, 1)):
        raise InputError(f"--columns must be their=ours pairs, each name once (e.g. price1=p1,price2=p2), got '{text}'")
    return dict(pairs)


def write_csv(path, header, rows):
    """Write header and rows (sequences of fields, each written as str: format numbers first) as CSV UTF-8, quoting
    a field that needs it ("Smith, J"), atomically: a crash leaves the old file or the new one. Returns the path."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header), writer.writerows(rows)
    train.atomic_write(path, out.getvalue().encode())
    return Path(path)


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
    """({key: row indices}, skipped [(key, first row, count)]), both in order of first appearance: a key with fewer
    than min_rows rows is skipped, for the caller to warn about; more than max_rows, or no key left, is an error."""
    if not len(keys):
        raise InputError(f"no {what} rows")
    names, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    indices = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    groups, skipped = {}, []
    for k in np.argsort(first):
        if max_rows and counts[k] > max_rows:
            raise InputError(f"row {rows[first[k]]}: {what} '{names[k]}' has {counts[k]:,} observations; the dense "
                             f"T x T method takes at most {max_rows:,} per {what}")
        if counts[k] < min_rows:
            skipped.append((str(names[k]), int(rows[first[k]]), int(counts[k])))
        else:
            groups[names[k]] = indices[k]
    if not groups:
        name, row, count = skipped[0]
        raise InputError(f"row {row}: {what} '{name}' has {count} row(s); need at least {min_rows}, and no {what} "
                         f"has that many")
    return groups, skipped
