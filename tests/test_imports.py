"""Imports: row-level rejections with file/row/column, flagged contact data, idempotent re-imports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from outreach.importer import ImportFileError, import_directory, import_file
from outreach.models import ConsentEvent, Customer, Holding, ImportRejection, Suppression, Transaction

CUSTOMER_HEADER = (
    "customer_id,first_name,last_name,language,birth_date,mobile,email,street,house_number,"
    "postal_code,city,country,timezone,loyalty_tier\n"
)
TX_HEADER = (
    "transaction_id,customer_id,booked_at,amount,currency,counterparty_name,counterparty_iban,"
    "description,mcc,city,country\n"
)


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def test_bad_customer_rows_are_rejected_with_file_row_column_and_counts_add_up(engine, tmp_path):
    path = write(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER
        + "C1,Jan,Jansen,nl,1980-01-02,+31612345678,jan@example.com,Dorpsstraat,1,1234 AB,Utrecht,NL,,gold\n"
        + "C2,Piet,Pietersen,nl,02-01-1980,+31612345679,piet@example.com,Dorpsstraat,2,1234 AB,Utrecht,NL,,\n"
        + "C3,Kees,de Vries,de,1970-01-01,,,Weg,3,1234 AB,Utrecht,NL,,\n"
        + "C4,Anna,Bakker,nl,1990-05-05,,,Weg,4,1234 AB,Utrecht,NL,Mars/Olympus,\n"
        + "C5,Eva,Smit,nl,1990-05-05\n"
        + ",Bram,Visser,en,1990-05-05,,,Weg,6,1234 AB,Utrecht,NL,,\n"
        + "\n"  # a blank line is no row
        + "C7,Lotte,de Boer,en,1985-07-07,0612345670,lotte@example.com,"
        + "Laan,7,2345 CD,Leiden,NL,Europe/London,\n",
    )
    report = import_file(engine, "customers", path)

    assert (report.rows_read, report.inserted, report.rejected) == (7, 2, 5)
    assert report.balanced and report.rows_read == report.imported + report.rejected
    assert [str(r) for r in report.rejections] == [
        "customers.csv row 3, column birth_date: not a date (YYYY-MM-DD) '0***' (10 chars)",
        "customers.csv row 4, column language: 'de' is not one of nl, en",
        "customers.csv row 5, column timezone: not an IANA time zone (like Europe/Amsterdam) 'Mars/Olympus'",
        "customers.csv row 6, column (row): row has 5 fields, the header has 14",
        "customers.csv row 7, column customer_id: empty, a value is required",
    ]
    # the rejections are stored, one per rejected row, without the personal value itself
    with engine.connect() as conn:
        stored = conn.execute(
            select(
                ImportRejection.file,
                ImportRejection.row_number,
                ImportRejection.column_name,
                ImportRejection.reason,
            )
            .where(ImportRejection.batch_id == report.batch_id)
            .order_by(ImportRejection.row_number)
        ).all()
    assert [(f, r, c) for f, r, c, _ in stored] == [
        ("customers.csv", 3, "birth_date"),
        ("customers.csv", 4, "language"),
        ("customers.csv", 5, "timezone"),
        ("customers.csv", 6, "(row)"),
        ("customers.csv", 7, "customer_id"),
    ]
    assert not any("02-01-1980" in reason for *_, reason in stored)
    with engine.connect() as conn:
        ids = conn.scalars(select(Customer.customer_id).order_by(Customer.customer_id)).all()
        lotte = conn.execute(select(Customer).where(Customer.customer_id == "C7")).one()
    assert ids == ["C1", "C7"]
    assert lotte.timezone == "Europe/London" and lotte.language == "en"
    assert lotte.mobile == "+31612345670" and lotte.postal_code == "2345 CD"


def test_unusable_phone_or_email_is_imported_but_marked_invalid(engine, tmp_path):
    path = write(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER
        + "C1,Jan,Jansen,nl,1980-01-02,06-1234,jan@,Dorpsstraat,1,1234ab,Utrecht,NL,,\n"
        + "C2,Piet,Pietersen,nl,,06 12 345 678, Piet@Example.com ,,2,1234 AB,Utrecht,NL,,\n"
        + "C3,Kees,Vries,nl,,+31201234567,,Weg,3,ABCD 12,Utrecht,NL,,\n",
    )
    report = import_file(engine, "customers", path)
    assert (report.inserted, report.rejected) == (3, 0)
    assert report.flagged == {
        "mobile_invalid": 2,  # a short number and a landline
        "email_invalid": 1,
        "email_missing": 1,
        "address_invalid": 2,  # no street, and a postcode that is not Dutch
    }
    with engine.connect() as conn:
        rows = {c.customer_id: c for c in conn.execute(select(Customer)).all()}
    assert (rows["C1"].mobile, rows["C1"].mobile_valid) == ("06-1234", False)
    assert (rows["C1"].email, rows["C1"].email_valid) == ("jan@", False)
    assert (rows["C1"].postal_code, rows["C1"].address_valid) == ("1234 AB", True)
    assert (rows["C2"].mobile, rows["C2"].mobile_valid) == ("+31612345678", True)
    assert (rows["C2"].email, rows["C2"].email_valid) == ("Piet@example.com", True)
    assert rows["C2"].address_valid is False and rows["C2"].birth_date is None
    assert rows["C3"].mobile_valid is False and rows["C3"].address_valid is False
    assert rows["C3"].timezone == "Europe/Amsterdam"


def test_a_missing_required_column_fails_the_file_naming_file_and_column(engine, tmp_path):
    path = write(tmp_path / "customers.csv", "customer_id,first_name,last_name,language\nC1,Jan,Jansen,nl\n")
    with pytest.raises(ImportFileError) as caught:
        import_file(engine, "customers", path)
    assert str(caught.value).startswith("customers.csv: missing required columns birth_date, mobile, email")
    assert count(engine, Customer) == 0
    with pytest.raises(ImportFileError, match="missing required column amount$"):
        import_file(engine, "transactions", write(tmp_path / "t.csv", TX_HEADER.replace("amount,", "")))
    with pytest.raises(ImportFileError, match="nothing.csv: file not found"):
        import_file(engine, "holdings", tmp_path / "nothing.csv")
    with pytest.raises(ImportFileError, match="empty file"):
        import_file(engine, "holdings", write(tmp_path / "empty.csv", ""))


def add_customer(engine, tmp_path, customer_id: str = "C1") -> None:
    """Transactions refer to customers: the one they name is imported first."""
    path = write(
        tmp_path / "one_customer.csv",
        CUSTOMER_HEADER.replace(",loyalty_tier", "")
        + f"{customer_id},Jan,Jansen,nl,1980-01-02,+31612345678,jan@example.com,Weg,1,1234 AB,Utrecht,NL,\n",
    )
    assert import_file(engine, "customers", path).inserted == 1


def test_transaction_values_are_checked_and_timestamps_stored_in_utc(engine, tmp_path):
    add_customer(engine, tmp_path)
    path = write(
        tmp_path / "transactions.csv",
        TX_HEADER
        + "T1,C1,2026-11-19T10:00:00,-12.50,EUR,Albert Heijn,,Boodschappen,5411,Utrecht,NL\n"
        + "T2,C1,2026-07-01T10:00:00+02:00,2500.00,,Werkgever BV,NL66INGB0000064210,Salaris,,,\n"
        + 'T3,C1,2026-11-19T10:00:00,"12,50",EUR,,,,,,\n'
        + "T4,C1,2026-11-19T10:00:00,1.00,EUR,,NL00INGB0000064210,,,,\n"
        + "T5,C1,2026-11-19T10:00:00,1.00,EUR,,,,60x1,,\n"
        + "T6,C1,yesterday,1.00,EUR,,,,,,\n"
        + "T7,C1,2026-11-19T10:00:00,1.00,euro,,,,,,NLD\n",
    )
    report = import_file(engine, "transactions", path)
    assert (report.rows_read, report.inserted, report.rejected) == (7, 2, 5)
    assert [(r.row, r.column) for r in report.rejections] == [
        (4, "amount"),
        (5, "counterparty_iban"),
        (6, "mcc"),
        (7, "booked_at"),
        (8, "currency"),
    ]
    assert "NL00INGB0000064210" not in report.rejections[1].reason  # an IBAN is masked
    assert report.rejections[4].reason.endswith("; also country: not a two-letter country code 'NLD'")
    with engine.connect() as conn:
        rows = {t.transaction_id: t for t in conn.execute(select(Transaction)).all()}
    stamp = rows["T1"].booked_at
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    assert stamp == datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # naive = Amsterdam time (CET)
    assert Decimal(rows["T1"].amount) == Decimal("-12.50") and rows["T2"].currency == "EUR"


def test_reimporting_the_same_files_changes_nothing(engine, tmp_path):
    files = {
        "customers": CUSTOMER_HEADER
        + "C1,Jan,Jansen,nl,1980-01-02,+31612345678,jan@example.com,Weg,1,1234 AB,Utrecht,NL,,\n",
        "transactions": TX_HEADER
        + "".join(f"T{i},C1,2026-11-1{i % 10}T10:00:00Z,-{i}.00,EUR,,,,,,\n" for i in range(1, 40)),
        "consents": "customer_id,scope,choice,source,recorded_at\n"
        "C1,all,opt_out,app,2026-01-01T10:00:00Z\nC1,sms,opt_out,app,2026-01-01T10:00:00Z\n"
        "C1,all,opt_in,app,2026-02-01T10:00:00Z\n",
        "suppressions": "customer_id,reason,valid_from,valid_until\nC1,arrears,2026-01-01,\n",
        "holdings": "customer_id,product\nC1,current_account\nC1,savings_account\n",
    }
    for kind, text in files.items():
        write(tmp_path / f"{kind}.csv", text)
    first = import_directory(engine, tmp_path)
    assert list(first) == ["customers", "transactions", "consents", "suppressions", "holdings"]
    assert [r.inserted for r in first.values()] == [1, 39, 3, 1, 2]
    again = import_directory(engine, tmp_path)
    for kind, report in again.items():
        assert (report.inserted, report.updated, report.rejected) == (0, 0, 0), kind
        assert report.already_present == first[kind].rows_read
    assert [count(engine, m) for m in (Customer, Transaction, ConsentEvent, Suppression, Holding)] == [
        1,
        39,
        3,
        1,
        2,
    ]

    # a changed row is an update, not a second row: new email, a suppression that ended
    write(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER
        + "C1,Jan,Jansen,nl,1980-01-02,+31612345678,jan@example.org,Weg,1,1234 AB,Utrecht,NL,,\n",
    )
    write(
        tmp_path / "suppressions.csv",
        "customer_id,reason,valid_from,valid_until\nC1,arrears,2026-01-01,2026-06-30\n",
    )
    changed = import_directory(engine, tmp_path)
    assert (changed["customers"].updated, changed["suppressions"].updated) == (1, 1)
    with engine.connect() as conn:
        assert conn.scalar(select(Customer.email)) == "jan@example.org"
        assert conn.scalar(select(Suppression.valid_until)) == date(2026, 6, 30)
    assert count(engine, Suppression) == 1


def test_consent_suppression_and_holding_contracts(engine, tmp_path):
    consents = write(
        tmp_path / "consents.csv",
        "customer_id,scope,choice,source,recorded_at\n"
        "C1,topic:investing,opt_out,branch,2026-01-01T10:00:00+01:00\n"
        "C1,fax,opt_out,branch,2026-01-01T10:00:00\n"
        "C1,sms,maybe,branch,2026-01-01T10:00:00\n"
        "C1,sms,opt_out,branch,\n",
    )
    report = import_file(engine, "consents", consents)
    assert (report.inserted, report.rejected) == (1, 3)
    assert [(r.row, r.column) for r in report.rejections] == [(3, "scope"), (4, "choice"), (5, "recorded_at")]
    suppressions = write(
        tmp_path / "suppressions.csv",
        "customer_id,reason,valid_from,valid_until\n"
        "C1,deceased,2026-01-01,\nC1,bored,2026-01-01,\nC1,arrears,2026-05-01,2026-04-01\n",
    )
    report = import_file(engine, "suppressions", suppressions)
    assert (report.inserted, report.rejected) == (1, 2)
    assert [(r.row, r.column) for r in report.rejections] == [(3, "reason"), (4, "valid_until")]
    holdings = write(
        tmp_path / "holdings.csv", "customer_id,product,opened_at\nC1,credit_card,2020-02-02\nC1,,\n"
    )
    report = import_file(engine, "holdings", holdings)
    assert (report.inserted, report.rejected) == (1, 1)
    assert str(report.rejections[0]) == "holdings.csv row 3, column product: empty, a value is required"


def test_a_line_that_is_not_utf8_is_rejected_alone(engine, tmp_path):
    path = tmp_path / "holdings.csv"
    path.write_bytes(
        "\ufeffcustomer_id,product\n".encode()  # with a byte-order mark, as spreadsheets save it
        + b"C1,savings_account\n"
        + "C2,spaarrekening \u00e9\u00e9n\n".encode("latin-1")
        + b"C3,credit_card\n"
    )
    report = import_file(engine, "holdings", path)
    assert (report.rows_read, report.inserted, report.rejected) == (3, 2, 1)
    assert str(report.rejections[0]).startswith("holdings.csv row 3, column (row): not valid UTF-8")


def test_unknown_kind_is_refused(engine, tmp_path):
    with pytest.raises(ImportFileError, match="unknown import kind 'accounts'"):
        import_file(engine, "accounts", tmp_path / "x.csv")


def test_what_would_be_silently_wrong_is_rejected_or_warned_about(engine, tmp_path):
    """A customer twice in one file, a transaction of nobody, an unknown currency, a booking without
    its time: each rejected naming file, row and column; unknown columns: one warning per file."""
    customers = write(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER.replace(",loyalty_tier", ",loyalty_tier,notes")
        + "C1,Jan,Jansen,nl,1980-01-02,,,Weg,1,1234 AB,Utrecht,NL,,gold,\n"
        + "C2,Piet,Pietersen,nl,1980-01-02,,,Weg,2,1234 AB,Utrecht,NL,,,\n"
        + "C1,Johan,Jansen,nl,1981-03-04,,,Laan,9,2345 CD,Leiden,NL,,,moved\n",
    )
    report = import_file(engine, "customers", customers)
    assert (report.rows_read, report.inserted, report.rejected) == (3, 2, 1) and report.balanced
    assert [str(r) for r in report.rejections] == [
        "customers.csv row 4, column customer_id: 'C1' is on row 2 already"
    ]
    assert report.warnings == ["customers.csv: unknown column(s) ignored: loyalty_tier, notes"]
    assert "warning: customers.csv: unknown column(s) ignored: loyalty_tier, notes" in report.summary()
    with engine.connect() as conn:
        assert conn.scalar(select(Customer.first_name).where(Customer.customer_id == "C1")) == "Jan"

    transactions = write(
        tmp_path / "transactions.csv",
        TX_HEADER
        + "T1,C1,2026-11-19T10:00:00,-12.50,EUR,,,,,,\n"
        + "T2,C9,2026-11-19T10:00:00,-12.50,EUR,,,,,,\n"
        + "T3,C2,2026-11-19T10:00:00,-12.50,XYZ,,,,,,\n"
        + "T4,C2,2026-11-19,-12.50,GBP,,,,,,\n"
        + "T5,C2,2026-11-19T23:10:00+00:00,-12.50,gbp,,,,,,\n",
    )
    report = import_file(engine, "transactions", transactions)
    assert (report.rows_read, report.inserted, report.rejected) == (5, 2, 3) and report.balanced
    assert sorted(str(r) for r in report.rejections) == [
        "transactions.csv row 3, column customer_id: no customer 'C9' (import customers first)",
        "transactions.csv row 4, column currency: XYZ is not an ISO 4217 currency code",
        "transactions.csv row 5, column booked_at: a date without a time '2026-11-19': "
        "a date-time is required",
    ]
    assert report.warnings == []
    with engine.connect() as conn:
        assert conn.scalars(
            select(Transaction.transaction_id).order_by(Transaction.transaction_id)
        ).all() == [
            "T1",
            "T5",
        ]
        stored = conn.execute(
            select(ImportRejection.row_number, ImportRejection.column_name).where(
                ImportRejection.batch_id == report.batch_id
            )
        ).all()
    assert sorted(tuple(r) for r in stored) == [(3, "customer_id"), (4, "currency"), (5, "booked_at")]
