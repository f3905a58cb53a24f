"""csvtools: every file below is built by hand; each bad one must give one InputError naming the earliest bad row."""
import numpy as np
import pytest

from csvtools import InputError, first_bad_row, group_rows, parse_column_map, read_csv, write_csv


def columns(*names):
    """A check_header that wants exactly names (what the tools do), and the header it saw."""
    seen = []

    def check(header):
        seen.append(header)
        if header != list(names):
            raise InputError(f"row 1: columns must be {','.join(names)}, got {','.join(header)}")
    check.seen = seen
    return check


def csv_file(tmp_path, content):
    path = tmp_path / "data.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def read(tmp_path, content, *names, **kw):
    return read_csv(csv_file(tmp_path, content), columns(*(names or ("subject", "p1", "p2"))), **kw)


def error(tmp_path, content, *names, **kw):
    with pytest.raises(InputError) as e:
        read(tmp_path, content, *names, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


GOOD = [["subject", "p1", "p2"], ["a", 1.5, -2.0], ["a", 3.0, 4.0], ["b", 5.0, 6.25]]


def check_good(result):
    header, keys, values, rows = result
    assert header == GOOD[0] and list(keys) == ["a", "a", "b"] and list(rows) == [2, 3, 4]
    assert values.tolist() == [r[1:] for r in GOOD[1:]]


# ----------------------------------------------------------------------------- writing


def test_write_csv_quotes_a_comma_and_reads_back(tmp_path):
    path = tmp_path / "out" / "indices.csv"
    assert write_csv(path, ["subject", "p1", "p2"], [["Smith, J", "1", "2"], ["b", 3, 4.5]]) == path
    text = path.read_text()
    assert text == 'subject,p1,p2\n"Smith, J",1,2\nb,3,4.5\n'
    header, keys, values, rows = read_csv(path, columns("subject", "p1", "p2"))
    assert list(keys) == ["Smith, J", "b"] and values.tolist() == [[1, 2], [3, 4.5]]
    assert sorted(p.name for p in path.parent.iterdir()) == ["indices.csv"]  # no temporary file left


def test_write_csv_replaces_an_old_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("old\n")
    write_csv(path, ["game", "x"], [["g1", "1"]])
    assert path.read_text() == "game,x\ng1,1\n"


# ----------------------------------------------------------------------------- encodings and line ends


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_line_ends_and_byte_order_mark(tmp_path, bom, end):
    body = end.join([b"subject,p1,p2", b"a,1.5,-2", b'"a",3,4', b"b,5,6.25"]) + end
    check_good(read(tmp_path, bom + body))


def test_cr_only_rows_are_numbered(tmp_path):
    assert error(tmp_path, b"subject,p1,p2\ra,1,2\r\ra,1\r") == "row 4: 2 fields, expected 3 (read as comma-separated)"


def test_quoted_fields_keep_commas_and_line_ends(tmp_path):
    _, keys, values, rows = read(tmp_path, b'subject,p1,p2\r\n"Smith, J",1,2\r\n"two\r\nlines","3",4\r\nc,5,6\r\n')
    assert list(keys) == ["Smith, J", "two\nlines", "c"] and values.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert list(rows) == [2, 3, 4]  # spreadsheet rows: a cell with a line break is still one row


@pytest.mark.parametrize("content, row", [
    (b"subject,p1,p2\na,1,2\nb\xe9,2,1\n", 3),
    (b"\xef\xbb\xbfsubject,p1,p2\na,1,2\nb\xe9,2,1\n", 3),  # the byte-order mark does not shift the byte
    (b"subject,p1,p2\ra,1,2\r\rb\xe9,2,1\r", 4),
    (b"subject,p1,p2\r\na,1,2\r\nb\xe9,2,1\r\n", 3),
])
def test_latin1_names_row_and_byte(tmp_path, content, row):
    assert error(tmp_path, content) == f"row {row}: not UTF-8 text (byte 0xe9); save the file as CSV UTF-8"


# ----------------------------------------------------------------------------- separators and decimal commas


def test_semicolon_with_decimal_commas(tmp_path):
    check_good(read(tmp_path, "subject;p1;p2\na;1,5;-2\na;3;4,0\nb;5;6,25\n"))


def test_tab_with_decimal_commas_and_points(tmp_path):
    check_good(read(tmp_path, "subject\tp1\tp2\na\t1,5\t-2\na\t3.0\t4\n\"b\"\t5\t6,25\n"))


def test_semicolon_file_keeps_a_key_with_a_comma(tmp_path):
    _, keys, values, _ = read(tmp_path, "subject;p1;p2\nSmith, J;1,5;2\n")
    assert list(keys) == ["Smith, J"] and values.tolist() == [[1.5, 2]]


def test_a_comma_file_has_no_decimal_commas(tmp_path):
    assert error(tmp_path, "subject,p1,p2\na,1,5,2\n") == "row 2: 4 fields, expected 3 (read as comma-separated)"


@pytest.mark.parametrize("content, msg", [
    ("subject;p1;p2\na;1;2\nb;1,5,5;2\n", "row 3: p1, p2 must be numbers, got 1,5,5;2 (read as semicolon-separated)"),
    ("subject\tp1\tp2\na\t1\t2\nb\t1\n", "row 3: 2 fields, expected 3 (read as tab-separated)"),
    ("subject;price;p2\na;1;2\n", "row 1: columns must be subject,p1,p2, got subject,price,p2 "
                                  "(read as semicolon-separated)"),
    ("subject p1 p2\na 1 2\n", "row 1: columns must be subject,p1,p2, got subject p1 p2 (read as comma-separated)"),
])
def test_failures_name_the_separator(tmp_path, content, msg):
    assert error(tmp_path, content) == msg


def test_separator_counted_outside_quotes(tmp_path):
    _, keys, values, _ = read(tmp_path, '"sub;ject;";p1;p2\na;1;2\n', "sub;ject;", "p1", "p2")
    assert list(keys) == ["a"] and values.tolist() == [[1, 2]]
    _, keys, values, _ = read(tmp_path, '"a;b;c;d",p1,p2\na,1,2\n', "a;b;c;d", "p1", "p2")
    assert values.tolist() == [[1, 2]]


# ----------------------------------------------------------------------------- headers


def test_header_case_and_spaces(tmp_path):
    check = columns("subject", "p1", "p2")
    header = read_csv(csv_file(tmp_path, " Subject ,P1,  p2 \na,1,2\n"), check)[0]
    assert check.seen == [["subject", "p1", "p2"]] and header == ["subject", "p1", "p2"]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_trailing_separator(tmp_path, sep):
    body = sep.join(["subject", "p1", "p2", ""]) + "\n" + "".join(
        sep.join([r[0], f"{r[1]:g}", f"{r[2]:g}", ""]) + "\n" for r in GOOD[1:])
    check_good(read(tmp_path, body))


def test_trailing_separator_with_a_value_under_it(tmp_path):
    msg = error(tmp_path, "subject,p1,p2,\na,1,2,\nb,1,2,7\nc,1,2,8\n")
    assert msg == "row 3: a value (7) under the header's empty last column"


def test_rename_maps_their_names_onto_ours(tmp_path):
    rename = parse_column_map(" ID =subject, Price1=p1,price2 = P2")
    assert rename == {"id": "subject", "price1": "p1", "price2": "p2"}
    check_good(read(tmp_path, "id,PRICE1,price2\na,1.5,-2\na,3,4\nb,5,6.25\n", rename=rename))


def test_rename_can_swap_names(tmp_path):
    _, _, values, _ = read(tmp_path, "subject,p2,p1\na,1,2\n", rename=parse_column_map("p1=p2,p2=p1"))
    assert values.tolist() == [[1, 2]]


def test_rename_of_a_name_not_in_the_file(tmp_path):
    msg = error(tmp_path, "subject,p1,p2\na,1,2\n", rename={"price": "p1"})
    assert msg == "row 1: the column map names 'price', not a column of the file (subject,p1,p2)"


@pytest.mark.parametrize("text", ["a", "a=b,c", "a=,b=c", "=b", "a=b=c", "a=x,b=x", "a=x,A=y", "a=b,"])
def test_bad_column_map(text):
    with pytest.raises(InputError, match="--columns must be their=ours"):
        parse_column_map(text)


def test_empty_column_map():
    assert parse_column_map("") == parse_column_map("  ") == {}


# ----------------------------------------------------------------------------- values


def test_huge_value_rejected(tmp_path):
    msg = error(tmp_path, "subject,p1,p2\na,1,2\na,1e300,2\nb,1,1e300\n")
    assert msg == "row 3: |value| above 1e+100; rescale the units"


def test_huge_value_earliest_row_and_negative(tmp_path):
    body = "subject,p1,p2\na,1,2\na,1,2\na,-1e101,2\nb,1e300,1\nb,1,2e200\n"
    assert error(tmp_path, body) == "row 4: |value| above 1e+100; rescale the units"


def test_huge_boundary_and_nonfinite_left_to_the_caller(tmp_path):
    _, _, values, _ = read(tmp_path, "subject,p1,p2\na,1e100,-1e100\na,inf,nan\n")
    assert values[0].tolist() == [1e100, -1e100] and not np.isfinite(values[1]).any()
    _, _, values, _ = read(tmp_path, "subject,p1,p2\na,nan,1\na,1e300,2\n")  # the tool reports row 2's NaN first
    assert values[1, 0] == 1e300
    assert error(tmp_path, "subject,p1,p2\na,1e300,1\na,nan,2\n").startswith("row 2: |value| above")


@pytest.mark.parametrize("content, msg", [
    ("subject,p1,p2\na,1,2\na,2,1,4\n", "row 3: 4 fields, expected 3 (read as comma-separated)"),
    ("subject,p1,p2\na,1,2\n\n  \na,2\n", "row 5: 2 fields, expected 3 (read as comma-separated)"),
    ("subject,p1,p2\na,1,2\na,x,1\na,1,\n", "row 3: p1, p2 must be numbers, got x,1 (read as comma-separated)"),
    ("subject,p1,p2\n", "has a header but no rows"),
    ("subject,p1,p2\n\n,,\n", "has a header but no rows"),
    ("", "is empty"),
    (b"\xef\xbb\xbf\r\n", "is empty"),
    ("\nsubject,p1,p2\na,1,2\n", "row 1: no column names; the header must be the first row"),
])
def test_bad_files(tmp_path, content, msg):
    assert msg in error(tmp_path, content)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_csv(tmp_path / "nope.csv", columns("subject"))


def test_first_bad_row_is_the_earliest_over_all_checks():
    rows = np.array([2, 3, 5, 6])
    with pytest.raises(InputError, match="^row 3: second$"):
        first_bad_row(rows, [(np.array([0, 0, 1, 1], bool), "first"), (np.array([0, 1, 0, 1], bool), "second")])
    first_bad_row(rows, [(np.zeros(4, bool), "never")])


# ----------------------------------------------------------------------------- groups


def test_groups_in_order_with_a_short_one_skipped():
    keys, rows = np.array(["b", "a", "b", "c", "a", "c"]), np.array([2, 3, 4, 6, 7, 8])
    groups, skipped = group_rows(keys[:5], rows[:5], "subject", 2)
    assert list(groups) == ["b", "a"] and [g.tolist() for g in groups.values()] == [[0, 2], [1, 4]]
    assert skipped == [("c", 6, 1)]
    groups, skipped = group_rows(keys, rows, "subject", 2)
    assert list(groups) == ["b", "a", "c"] and groups["c"].tolist() == [3, 5] and skipped == []


def test_groups_all_too_small():
    with pytest.raises(InputError, match="^row 3: game 'x' has 1 row\\(s\\); need at least 2, and no game has"):
        group_rows(np.array(["x", "y"]), np.array([3, 5]), "game", 2)


def test_groups_too_many_rows():
    keys, rows = np.array(["a"] * 2 + ["b"] * 4 + ["c"] * 5), np.arange(2, 13)
    groups, _ = group_rows(keys[:6], rows[:6], "subject", 2, 4)  # exactly max_rows is fine
    assert list(groups) == ["a", "b"]
    with pytest.raises(InputError, match="^row 8: subject 'c' has 5 observations; the dense T x T method takes at "
                                         "most 4 per subject$"):
        group_rows(keys, rows, "subject", 2, 4)


def test_groups_from_a_file(tmp_path):
    _, keys, _, rows = read(tmp_path, "subject,p1,p2\na,1,2\nlonely,1,1\na,2,1\n")
    groups, skipped = group_rows(keys, rows, "subject", 2)
    assert list(groups) == ["a"] and groups["a"].tolist() == [0, 2] and skipped == [("lonely", 3, 1)]
