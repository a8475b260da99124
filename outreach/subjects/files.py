"""Erasure in the files Outreach wrote: outbox messages, letters, print batches, call lists, reports.

A customer's own files (named by one of their message ids: SMS JSON, e-mail, letter PDF, its print
copy; or by their customer id: an access export) are deleted. In shared CSV files (letter index,
print manifests, call lists, exports) the customer's rows are removed: by customer or message id,
or any cell holding their e-mail address or phone number; a print batch's summary is recomputed
from its manifest, so the hashes the print house checks still hold. In other text files (reports,
JSON, e-mail) their e-mail, phone number and full name are replaced. Binary files other than those
named by a message id (xlsx exports) cannot be read and are listed, for the operator to delete by
hand. A first and a last name in separate cells of a shared HTML page are not recognised as theirs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TEXT_SUFFIXES = {".csv", ".json", ".jsonl", ".eml", ".txt", ".html", ".htm", ".md"}
OWN_SUFFIXES = {".json", ".eml", ".pdf", ".txt"}  # one message per file
BATCHES = "batches.csv"
REDACTED = "[erased]"


@dataclass(frozen=True)
class Marks:
    """What identifies the customer in a file."""

    customer_id: str
    message_ids: frozenset[str]
    exact: tuple[str, ...]  # e-mail, phone numbers, IBANs: a cell or text holding one is theirs
    names: tuple[str, ...]  # full name forms: replaced in free text

    def in_text(self, text: str) -> bool:
        lowered = text.lower()
        return any(value.lower() in lowered for value in self.exact)


@dataclass
class FileReport:
    deleted: list[Path] = field(default_factory=list)
    rewritten: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)  # binary files that may hold the customer


def marks_for(customer: dict, message_ids: Iterable[int], ibans: Iterable[str] = ()) -> Marks:
    exact = []
    if customer.get("email"):
        exact.append(customer["email"])
    mobile = customer.get("mobile")
    if mobile:
        exact.append(mobile)
        if mobile.startswith("+31"):  # the national form a person or an agent might type
            exact.append("0" + mobile[3:])
    exact += [iban for iban in ibans if iban]
    first, last = customer.get("first_name") or "", customer.get("last_name") or ""
    names = tuple(n for n in {f"{first} {last}".strip(), f"{last}, {first}".strip(", ")} if len(n) > 3)
    return Marks(customer["customer_id"], frozenset(str(m) for m in message_ids), tuple(exact), names)


def erase_files(roots: Iterable[Path], marks: Marks) -> FileReport:
    report = FileReport()
    for root in roots:
        if not root.is_dir():
            continue
        # os.walk with plain names: an outbox holds a file per message, and Path objects, sorting
        # them and a stat per file cost more than the check itself
        for folder, _dirs, names in os.walk(root):
            for name in sorted(names):
                stem, dot, suffix = name.rpartition(".")
                stem_id = stem.split("_", 1)[-1]  # print copies are <seq>_<message id>.pdf
                if f".{suffix}" in OWN_SUFFIXES and stem_id.isdigit() and stem_id not in marks.message_ids:
                    continue  # another customer's message
                path = Path(folder) / name
                if dot and path.exists():  # an index row earlier in the walk may have deleted it
                    _one(path, marks, report)
    return report


def _one(path: Path, marks: Marks, report: FileReport) -> None:
    stem_id = path.stem.split("_", 1)[-1]
    own_message = path.suffix in OWN_SUFFIXES and stem_id in marks.message_ids
    if own_message or path.stem == marks.customer_id:  # a message of theirs, or their access export
        path.unlink()
        report.deleted.append(path)
        return
    if path.suffix not in TEXT_SUFFIXES:
        if path.suffix in {".xlsx", ".zip", ".parquet"}:
            report.unreadable.append(path)
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".csv":
        _csv(path, text, marks, report)
    elif path.suffix in {".json", ".eml"} and marks.in_text(text):
        path.unlink()  # a message file addressed to them
        report.deleted.append(path)
    else:
        redacted = _redact(text, marks)
        if redacted != text:
            path.write_text(redacted, encoding="utf-8")
            report.rewritten.append(path)


def _theirs(row: dict[str, str], marks: Marks) -> bool:
    if row.get("customer_id") == marks.customer_id:
        return True
    if row.get("message_id") in marks.message_ids or row.get("letter_id") in marks.message_ids:
        return True
    return any(marks.in_text(value or "") for value in row.values())


def _csv(path: Path, text: str, marks: Marks, report: FileReport) -> None:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        return
    kept, dropped = [], []
    for row in reader:
        (dropped if _theirs(row, marks) else kept).append(row)
    if not dropped:
        redacted = _redact(text, marks)
        if redacted != text:
            path.write_text(redacted, encoding="utf-8")
            report.rewritten.append(path)
        return
    for row in dropped:  # an index or manifest row names the customer's letter file
        named = path.parent / (row.get("file") or "")
        if row.get("file") and named.is_file():
            named.unlink()
            report.deleted.append(named)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: _redact(v or "", marks) for k, v in row.items()} for row in kept)
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    report.rewritten.append(path)
    if path.name == "manifest.csv":
        _refresh_batch_summary(path, kept)


def _refresh_batch_summary(manifest: Path, rows: list[dict]) -> None:
    """The print house checks the manifest's hash and counts in batches.csv: recompute that batch's row."""
    summary = manifest.parent.parent / BATCHES
    if not summary.is_file():
        return
    with summary.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, lines = reader.fieldnames or [], list(reader)
    for line in lines:
        if line.get("batch") == manifest.parent.name:
            line["letters"] = str(len(rows))
            line["pages"] = str(sum(int(r.get("pages") or 0) for r in rows))
            line["first_postcode"] = rows[0].get("postcode", "") if rows else ""
            line["last_postcode"] = rows[-1].get("postcode", "") if rows else ""
            line["manifest_sha256"] = hashlib.sha256(manifest.read_bytes()).hexdigest()
    with summary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(lines)


def _redact(text: str, marks: Marks) -> str:
    for value in (*marks.exact, *marks.names):
        text = re.sub(re.escape(value), REDACTED, text, flags=re.IGNORECASE)
    return text
