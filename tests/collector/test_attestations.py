"""Attestation CSV parsing: the column mapping, every row validated, one-line errors naming file, line and column."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.attestations import Attestation, ColumnMap, iter_attestations, parse_columns, read_attestations
from collector.errors import InputError

COLUMNS = "person=Email,item=Policy,at=Signed"


def _write(tmp_path: Path, text: str, name: str = "acks.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _error(path: Path, columns: str = COLUMNS, type: str = "policy_ack") -> str:
    with pytest.raises(InputError) as caught:
        read_attestations(path, type=type, columns=parse_columns(columns))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_parse_columns_keeps_roles_in_order() -> None:
    """A mapping names the required roles and any optional ones, trimmed, in the order given."""
    mapping = parse_columns(" person = Email , item=Course Name,at=Completed,score=Score ")
    assert mapping == ColumnMap((("person", "Email"), ("item", "Course Name"), ("at", "Completed"),
                                 ("score", "Score")))
    assert mapping.optional == (("score", "Score"),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("person=Email,item=Policy", "at not mapped"),
        ("person=Email,item=Policy,at", "'at' is not role=Column"),
        ("person=Email,item=Policy,at=", "'at=' is not role=Column"),
        ("person=Email,person=Mail,item=Policy,at=Signed", "'person' is mapped twice"),
        ("Person=Email,item=Policy,at=Signed", "role 'Person' must be lowercase"),
    ],
)
def test_parse_columns_rejects_bad_mappings(text: str, problem: str) -> None:
    """A mapping missing a required role, malformed, repeated or with a bad role name is refused."""
    with pytest.raises(InputError, match=problem):
        parse_columns(text)


def test_rows_become_attestations(tmp_path: Path) -> None:
    """Each row gives an attestation: lowercased email, trimmed item, UTC time, its line, its key."""
    path = _write(tmp_path, (
        "Email,Name,Policy,Signed\n"
        "Alice@Acme.example,Alice,infosec-policy@v3,2026-03-02\n"
        " bob@acme.example , Bob ,  infosec-policy@v3 ,2026-03-02T09:30:00+02:00\n"
        "carol@acme.example,Carol,acceptable-use@v1,2026-03-03T10:00:00.5Z\n"
    ))
    rows = read_attestations(path, type="policy_ack", columns=parse_columns(COLUMNS))
    assert rows == [
        Attestation("policy_ack", "alice@acme.example", "infosec-policy@v3", datetime(2026, 3, 2, tzinfo=UTC), 2),
        Attestation("policy_ack", "bob@acme.example", "infosec-policy@v3", datetime(2026, 3, 2, 7, 30, tzinfo=UTC), 3),
        Attestation("policy_ack", "carol@acme.example", "acceptable-use@v1",
                    datetime(2026, 3, 3, 10, 0, 0, 500000, tzinfo=UTC), 4),
    ]
    assert rows[0].source_key == "policy_ack/alice@acme.example/infosec-policy@v3"
    assert all(r.at.tzinfo is UTC or r.at.utcoffset() == timedelta(0) for r in rows)


def test_bom_case_and_spaces_in_headers(tmp_path: Path) -> None:
    """A BOM is dropped and headers match the mapping whatever their case and surrounding spaces."""
    path = _write(tmp_path, " EMAIL ,policy,  signed\r\nalice@acme.example,infosec-policy@v3,2026-03-02\r\n", bom=True)
    (row,) = read_attestations(path, type="policy_ack", columns=parse_columns(COLUMNS))
    assert (row.person, row.item, row.line) == ("alice@acme.example", "infosec-policy@v3", 2)


def test_optional_roles_and_blank_rows(tmp_path: Path) -> None:
    """Optional mapped columns travel in `extra`; rows with only empty cells are skipped, line numbers stay true."""
    path = _write(tmp_path, (
        "Email,Course,Completed,Score\n"
        "alice@acme.example,Security awareness 2026,2026-01-15,92\n"
        "\n"
        ",,,\n"
        "bob@acme.example,Security   awareness 2026,2026-01-16,88\n"
    ))
    rows = read_attestations(path, type="training",
                             columns=parse_columns("person=Email,item=Course,at=Completed,score=Score"))
    assert [(r.line, r.item, r.extra) for r in rows] == [
        (2, "Security awareness 2026", (("score", "92"),)),
        (5, "Security awareness 2026", (("score", "88"),)),
    ]


def test_multiline_cell_reports_the_rows_first_line(tmp_path: Path) -> None:
    """A quoted cell spanning lines does not shift the line numbers of the rows or errors after it."""
    path = _write(tmp_path, (
        "Email,Policy,Signed,Note\n"
        'alice@acme.example,infosec-policy@v3,2026-03-02,"two\nlines"\n'
        "bob@acme.example,infosec-policy@v3,yesterday,\n"
    ))
    assert _error(path) == (
        f"{path}: line 4: column 'Signed' (at): 'yesterday' is not a date (2026-03-31) "
        "or an RFC 3339 time (2026-03-31T14:05:00Z)"
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("bob at acme,infosec-policy@v3,2026-03-02", "column 'Email' (person): 'bob at acme' is not an email address"),
        ("bob@acme,infosec-policy@v3,2026-03-02", "column 'Email' (person): 'bob@acme' is not an email address"),
        ("a/b@acme.example,infosec-policy@v3,2026-03-02", "column 'Email' (person): 'a/b@acme.example' is not an"),
        (",infosec-policy@v3,2026-03-02", "column 'Email' (person): empty (expected an email address)"),
        ("bob@acme.example,  ,2026-03-02", "column 'Policy' (item): empty"),
        ("bob@acme.example,policy\u202ev3,2026-03-02", "column 'Policy' (item): 'policy\\u202ev3' holds control"),
        ("bob@acme.example,infosec-policy@v3,", "column 'Signed' (at): empty (expected a date"),
        ("bob@acme.example,infosec-policy@v3,2026-02-30", "column 'Signed' (at): '2026-02-30' is not a real date"),
        ("bob@acme.example,infosec-policy@v3,2026-03-02 10:00", "'2026-03-02 10:00' has no UTC offset"),
        ("bob@acme.example,infosec-policy@v3,03/02/2026", "'03/02/2026' is not a date (2026-03-31)"),
        ("bob@acme.example", "column 'Policy' (item): empty"),
    ],
)
def test_bad_row_is_one_line_naming_file_line_and_column(tmp_path: Path, row: str, expected: str) -> None:
    """A bad cell raises InputError with one line: the file, the line number, the column and what is wrong."""
    path = _write(tmp_path, f"Email,Policy,Signed\nalice@acme.example,infosec-policy@v3,2026-03-01\n{row}\n")
    message = _error(path)
    assert message.startswith(f"{path}: line 3: ")
    assert expected in message


def test_the_first_bad_row_rejects_the_whole_file(tmp_path: Path) -> None:
    """A streaming caller gets the good rows before the bad one, then the error: nothing may be stored."""
    path = _write(tmp_path, (
        "Email,Policy,Signed\n"
        "alice@acme.example,infosec-policy@v3,2026-03-01\n"
        "nobody,infosec-policy@v3,2026-03-01\n"
        "carol@acme.example,infosec-policy@v3,2026-03-01\n"
    ))
    seen: list[str] = []
    with path.open("rb") as binary, pytest.raises(InputError, match="line 3"):
        for row in iter_attestations(binary, name="acks.csv", type="policy_ack", columns=parse_columns(COLUMNS)):
            seen.append(row.person)
    assert seen == ["alice@acme.example"]


def test_header_problems_are_named(tmp_path: Path) -> None:
    """A mapped column that is absent or appears twice, and an empty file, are named with line 1."""
    missing = _write(tmp_path, "Mail,Policy,Signed\nalice@acme.example,p,2026-03-01\n", "a.csv")
    assert _error(missing) == f"{missing}: line 1: no column 'Email' (for person); the columns are 'Mail', 'Policy', 'Signed'"
    twice = _write(tmp_path, "Email,Policy,email,Signed\n", "b.csv")
    assert _error(twice) == f"{twice}: line 1: column 'Email' (for person) appears more than once"
    empty = _write(tmp_path, "", "c.csv")
    assert _error(empty) == f"{empty}: the file is empty (expected a header line)"


def test_not_utf8_and_broken_csv_are_named(tmp_path: Path) -> None:
    """A non-UTF-8 byte and malformed quoting are reported with their line."""
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"Email,Policy,Signed\nalice@acme.example,p,2026-03-01\nren\xe9@acme.example,p,2026-03-01\n")
    assert _error(latin) == f"{latin}: line 3: not UTF-8 text (export the CSV as UTF-8)"
    broken = _write(tmp_path, 'Email,Policy,Signed\nalice@acme.example,"p"x,2026-03-01\n', "broken.csv")
    assert _error(broken).startswith(f"{broken}: line 2: not valid CSV: ")


def test_type_must_be_an_identifier(tmp_path: Path) -> None:
    """The attestation type becomes part of the source key, so it must be a plain identifier."""
    path = _write(tmp_path, "Email,Policy,Signed\n")
    assert "--type: 'policy/ack'" in _error(path, type="policy/ack")


def test_a_non_utc_offset_is_converted() -> None:
    """A time with an offset is stored as the same instant in UTC."""
    data = io.BytesIO(b"Email,Policy,Signed\nalice@acme.example,p,2026-03-01T23:30:00-05:00\n")
    (row,) = iter_attestations(data, name="x.csv", type="policy_ack", columns=parse_columns(COLUMNS))
    assert row.at == datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert row.at.tzinfo == UTC and row.at.hour == 4


def test_ten_thousand_rows_parse_well_under_the_bar(tmp_path: Path) -> None:
    """A 10,000-row training export parses in well under the 5 s the import is allowed in total."""
    lines = ["Employee Email,Course,Completed On,Score"]
    lines += [f"user{n:05d}@acme.example,Security awareness 2026,2026-01-{n % 28 + 1:02d}T09:00:00Z,{n % 100}"
              for n in range(10_000)]
    path = _write(tmp_path, "\n".join(lines) + "\n", "training.csv")
    start = time.perf_counter()
    rows = read_attestations(path, type="training",
                             columns=parse_columns("person=Employee Email,item=Course,at=Completed On"))
    elapsed = time.perf_counter() - start
    assert len(rows) == 10_000 and rows[-1].line == 10_001
    assert len({r.source_key for r in rows}) == 10_000
    assert elapsed < 2.5
