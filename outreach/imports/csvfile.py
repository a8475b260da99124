"""Reading a CSV file under the import contract: a header row, UTF-8, extra columns ignored (and
reported), missing required columns an error naming the file and the column."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from outreach.errors import InputError


class ImportFileError(InputError):
    """The file as a whole cannot be read (missing, no header, missing required columns)."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One record: ``values`` maps the contract's columns to text, or ``problem`` says why the
    record itself is unreadable (``column`` names where)."""

    number: int  # the line where the record starts; the header is row 1, as a spreadsheet shows it
    values: dict[str, str] | None
    column: str = ""
    problem: str = ""


def check_header(name: str, header: list[str], required: Iterable[str]) -> None:
    missing = [column for column in required if column not in header]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ImportFileError(f"{name}: missing required column{plural} {', '.join(missing)}")
    seen: set[str] = set()
    for column in header:
        if column and column in seen:
            raise ImportFileError(f"{name}: column {column} appears twice in the header")
        seen.add(column)


class _Lines:
    """Decodes a binary file line by line so a bad byte is pinned to its own line."""

    def __init__(self, binary: Iterable[bytes]) -> None:
        self.binary = binary
        self.line = 0
        self.undecodable: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[str]:
        for raw in self.binary:
            self.line += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.undecodable.append((self.line, f"not valid UTF-8 (byte {exc.start + 1} of the line)"))
                continue
            if self.line == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark from spreadsheet exports
            yield text


def read_csv(
    path: str | Path,
    columns: Iterable[str],
    required: Iterable[str],
    on_unknown_columns: Callable[[list[str]], None] | None = None,
) -> Iterator[RawRow]:
    """Yield every record of ``path`` with the contract's ``columns`` (required ones checked in the
    header first). Blank lines are not records and are not yielded. Header columns outside the
    contract are ignored, and handed once to ``on_unknown_columns``."""
    path = Path(path)
    name = path.name
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise ImportFileError(f"{path}: file not found") from exc
    with handle:
        lines = _Lines(handle)
        reader = csv.reader(lines)
        try:
            header = [column.strip().lower() for column in next(reader)]
        except StopIteration:
            raise ImportFileError(f"{name}: empty file, expected a header row") from None
        except csv.Error as exc:
            raise ImportFileError(f"{name} row 1: unreadable header ({exc})") from None
        if lines.undecodable:
            raise ImportFileError(f"{name} row 1: header is {lines.undecodable[0][1]}")
        check_header(name, header, required)
        known = set(columns)
        wanted = [(index, column) for index, column in enumerate(header) if column in known]
        unknown = [column or f"(column {index + 1} has no name)" for index, column in enumerate(header)
                   if column not in known]  # fmt: skip
        if unknown and on_unknown_columns is not None:
            on_unknown_columns(unknown)
        width = len(header)
        while True:
            start = lines.line + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield RawRow(start, None, "(row)", f"unreadable CSV ({exc})")
                continue
            while lines.undecodable:
                bad_line, reason = lines.undecodable.pop(0)
                yield RawRow(bad_line, None, "(row)", reason)
                start = max(start, bad_line + 1)
            if not fields or not any(field.strip() for field in fields):
                continue
            if len(fields) < width:
                yield RawRow(start, None, "(row)", f"row has {len(fields)} fields, the header has {width}")
                continue
            if len(fields) > width and any(field.strip() for field in fields[width:]):
                yield RawRow(start, None, "(row)", f"row has {len(fields)} fields, the header has {width}")
                continue
            yield RawRow(start, {column: fields[index] for index, column in wanted})
        while lines.undecodable:  # a bad last line
            bad_line, reason = lines.undecodable.pop(0)
            yield RawRow(bad_line, None, "(row)", reason)
