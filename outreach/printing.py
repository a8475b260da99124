"""Print batches: the day's letters sorted by postcode, in batches of at most N, each with a manifest.

Input, written by the letter channel (channels/letter_pdf.py):
    <outbox>/<date>/letter/<letter id>.pdf  and  <outbox>/<date>/letter/index.csv
Output, rebuilt from scratch on every call (so calling it again after a rerun is safe):
    <outbox>/<date>/print/batch-001/0001_<letter id>.pdf ...  the letters in postcode order
    <outbox>/<date>/print/batch-001/manifest.csv             seq, letter_id, customer_id, postcode,
                                                             pages, sha256, file
    <outbox>/<date>/print/batches.csv                        batch, letters, pages, first and last
                                                             postcode, sha256 of the manifest
The print house checks every file against its SHA-256 and the page counts against the manifest.
Nothing goes missing silently: a PDF the index does not know, an indexed letter whose file is gone
or whose bytes changed since it was written stops the build with an error naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from channels.letter_pdf import INDEX_COLUMNS, INDEX_NAME
from outreach.errors import InputError

MANIFEST_COLUMNS = ("seq", "letter_id", "customer_id", "postcode", "pages", "sha256", "file")


class PrintBatchError(InputError):
    """The day's letters are not consistent; the message names the file and row."""


@dataclass(frozen=True, slots=True)
class Letter:
    letter_id: str
    customer_id: str
    postcode: str
    country: str
    pages: int
    sha256: str
    path: Path

    @property
    def sort_key(self) -> tuple:
        # domestic mail first, by postcode as the post sorts it ("1234 AB" and "1234ab" alike)
        return (
            self.country not in ("", "NL"),
            self.country,
            self.postcode.replace(" ", "").upper(),
            self.customer_id,
            self.letter_id,
        )


def read_index(folder: Path) -> list[Letter]:
    """The letters of one day, once each (a retried letter may be indexed twice: last row wins)."""
    index = folder / INDEX_NAME
    letters: dict[str, Letter] = {}
    with index.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != INDEX_COLUMNS:
            raise PrintBatchError(f"{index}: header {reader.fieldnames} is not {list(INDEX_COLUMNS)}")
        for row in reader:
            where = f"{index}, line {reader.line_num}"
            if None in row or any(row[c] is None for c in INDEX_COLUMNS):
                raise PrintBatchError(f"{where}: expected {len(INDEX_COLUMNS)} fields")
            try:
                pages = int(row["pages"])
            except ValueError as exc:
                raise PrintBatchError(f"{where}: pages {row['pages']!r} is not a number") from exc
            if not row["letter_id"] or pages < 1 or len(row["sha256"]) != 64:
                raise PrintBatchError(f"{where}: letter_id, pages or sha256 is not valid")
            if Path(row["file"]).name != row["file"]:
                raise PrintBatchError(f"{where}: file {row['file']!r} must be a plain file name")
            letters[row["letter_id"]] = Letter(
                row["letter_id"],
                row["customer_id"],
                row["postal_code"],
                row["country"].upper(),
                pages,
                row["sha256"],
                folder / row["file"],
            )
    return list(letters.values())


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check(folder: Path, letters: list[Letter]) -> None:
    known = {letter.path.name for letter in letters}
    for stray in sorted(p.name for p in folder.glob("*.pdf")):
        if stray not in known:
            raise PrintBatchError(f"{folder / stray}: letter PDF not in {INDEX_NAME}; cannot batch it")
    for letter in letters:
        if not letter.path.is_file():
            raise PrintBatchError(f"{letter.path}: in {INDEX_NAME} but the file is missing")
        if _sha256(letter.path) != letter.sha256:
            raise PrintBatchError(f"{letter.path}: SHA-256 differs from {INDEX_NAME}; the file changed")


def _place(source: Path, target: Path) -> None:
    """A hard link costs no space and keeps the bytes the manifest hashes; copy across devices."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_print_batches(outbox_dir: str | Path, run_date: date, max_letters: int) -> list[Path]:
    """Group the day's letters into batches of at most ``max_letters``, sorted by postcode.

    Returns the batch folders in order (empty when no letters were written that day)."""
    if max_letters < 1:
        raise ValueError("max_letters must be at least 1")
    day = Path(outbox_dir) / run_date.isoformat()
    folder = day / "letter"
    if not (folder / INDEX_NAME).exists():
        strays = sorted(folder.glob("*.pdf")) if folder.is_dir() else []
        if strays:
            raise PrintBatchError(f"{strays[0]}: letter PDF but no {folder / INDEX_NAME}")
        return []
    letters = sorted(read_index(folder), key=lambda letter: letter.sort_key)
    _check(folder, letters)

    final = day / "print"
    staging = day / f".print-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    summary: list[list[str]] = []
    names: list[str] = []
    for number, start in enumerate(range(0, len(letters), max_letters), start=1):
        batch = letters[start : start + max_letters]
        name = f"batch-{number:03d}"
        target = staging / name
        target.mkdir()
        rows = []
        for seq, letter in enumerate(batch, start=1):
            file = f"{seq:04d}_{letter.path.name}"
            _place(letter.path, target / file)
            rows.append(
                [
                    str(seq),
                    letter.letter_id,
                    letter.customer_id,
                    letter.postcode,
                    str(letter.pages),
                    letter.sha256,
                    file,
                ]
            )
        manifest = target / "manifest.csv"
        with manifest.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(MANIFEST_COLUMNS)
            writer.writerows(rows)
        summary.append(
            [
                name,
                str(len(batch)),
                str(sum(letter.pages for letter in batch)),
                batch[0].postcode,
                batch[-1].postcode,
                _sha256(manifest),
            ]
        )
        names.append(name)
    with (staging / "batches.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("batch", "letters", "pages", "first_postcode", "last_postcode", "manifest_sha256"))
        writer.writerows(summary)

    # swap the new batches in whole: a reader never sees half a rebuild
    old = day / f".print-old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return [final / name for name in names]
