"""Reading measurement spreadsheets (CSV and XLSX) into rows for ``MeasurementForm``.

Row numbers are the ones the user sees in their spreadsheet: the header is row 1.
Nothing here touches the database; ``audits/services`` validates and commits.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO

from django.core.exceptions import ValidationError

from core import files

# Template columns, in order; the header row must name exactly these (any order, any
# case). "indicator" and "date" are required in every row; the rest depend on the
# indicator's measure type.
COLUMNS = ["indicator", "date", "numerator", "denominator", "value", "location", "notes"]
REQUIRED_COLUMNS = {"indicator", "date"}
MAX_ROWS = 20_000
# Form field for each column.
FIELD_FOR_COLUMN = {"date": "measured_on"}


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong columns, not a spreadsheet...)."""


@dataclass(frozen=True)
class Row:
    number: int
    data: dict[str, str]
    formula_columns: tuple[str, ...] = ()


def _header(cells: list) -> list[str]:
    names = [str(c).strip().lower() if c is not None else "" for c in cells]
    while names and not names[-1]:
        names.pop()
    unknown = [n for n in names if n not in COLUMNS]
    missing = sorted(REQUIRED_COLUMNS - set(names))
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    problems = []
    if unknown:
        problems.append(
            "unknown column"
            + ("s " if len(unknown) > 1 else " ")
            + ", ".join(f"“{n or '(blank)'}”" for n in unknown)
        )
    if missing:
        problems.append(
            "missing column"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(f"“{n}”" for n in missing)
        )
    if duplicated:
        problems.append("repeated column " + ", ".join(f"“{n}”" for n in duplicated))
    if problems:
        raise ImportFileError(
            "Row 1 (the header) has "
            + "; ".join(problems)
            + ". The columns must be: "
            + ", ".join(COLUMNS)
            + " (download the template)."
        )
    return names


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value).strip()


def _rows(raw_rows: Iterator[list], names: list[str]) -> Iterator[Row]:
    for number, cells in enumerate(raw_rows, start=2):
        if number - 1 > MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows; split it up.")
        texts = [_cell_text(c) for c in cells]
        if not any(texts):
            continue
        extra = [t for t in texts[len(names) :] if t]
        if extra:
            raise ImportFileError(
                f"Row {number} has more cells than the header has columns. "
                f"The columns must be: {', '.join(COLUMNS)}."
            )
        data = {name: (texts[i] if i < len(texts) else "") for i, name in enumerate(names)}
        # A cell starting with "=" is a formula (in XLSX) or would become one when the
        # file is opened again (in CSV): refuse it rather than guess what it meant.
        formulas = tuple(name for name, text in data.items() if text.startswith("="))
        yield Row(number, data, formulas)


def read_csv(fileobj: IO[bytes]) -> Iterator[Row]:
    fileobj.seek(0)
    text = io.TextIOWrapper(fileobj, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError("The file is empty: it needs a header row.") from None
        names = _header(header)
        yield from _rows(reader, names)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(
            f"The file could not be read as CSV ({exc}). Save it as “CSV UTF-8”."
        ) from exc
    finally:
        text.detach()


def read_xlsx(fileobj: IO[bytes]) -> Iterator[Row]:
    """Rows of the first worksheet. The zip is checked (size, ratio, no DTD) before
    openpyxl opens it; openpyxl itself parses with defusedxml."""
    from openpyxl import load_workbook

    fileobj.seek(0)
    try:
        files.check_zip(fileobj)
    except ValidationError as exc:
        raise ImportFileError(" ".join(exc.messages)) from exc
    fileobj.seek(0)
    try:
        # data_only=False: a formula cell comes back as its "=..." text, so we can
        # refuse it instead of silently importing a cached result.
        workbook = load_workbook(fileobj, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a malformed workbook
        raise ImportFileError(f"The file could not be read as an Excel workbook ({exc}).") from exc
    try:
        sheet = workbook.worksheets[0]
        raw = sheet.iter_rows(values_only=True)
        try:
            header = list(next(raw))
        except StopIteration:
            raise ImportFileError("The workbook's first sheet is empty.") from None
        names = _header(header)
        yield from _rows((list(r) for r in raw), names)
    finally:
        workbook.close()


def read_rows(fileobj: IO[bytes], kind: str) -> Iterator[Row]:
    return read_xlsx(fileobj) if kind == "xlsx" else read_csv(fileobj)


def count_rows(fileobj: IO[bytes], kind: str) -> int:
    return sum(1 for _ in read_rows(fileobj, kind))


def form_data(row: Row) -> dict[str, str]:
    """A row as ``MeasurementForm`` data."""
    data = {FIELD_FOR_COLUMN.get(k, k): v for k, v in row.data.items()}
    data["source"] = "import"
    return data


def template_csv() -> bytes:
    return codecs.BOM_UTF8 + (",".join(COLUMNS) + "\r\n").encode()
