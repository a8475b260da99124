"""A synthetic Dutch retail bank for demos, tests and benchmarks.

``generate(out_dir, customers=10_000, seed=1, as_of=date)`` writes customers.csv, transactions.csv,
consents.csv, suppressions.csv and holdings.csv exactly in the import contract, so the files go
through ``outreach import`` like a real bank's. The same seed and date give the same bytes.

The 90 days before ``as_of`` hold salaries, rent, groceries and bills; every customer starts with an
opening balance transaction, so a balance is the sum of the amounts. So that a day's payment signals
have something to find, the events they look for are put in the last few days before ``as_of``: the
SVB's quarterly child benefit (kinderbijslag), large credits that lift a balance over €25,000 (a
few over €100,000), cash withdrawals at airports and airline tickets. Decoys sit beside them: SVB
pension payments (AOW), ordinary cash machines, balances that were high all along.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from faker import Faker

from outreach.imports.contracts import CONTRACTS

BANK_TIMEZONE = ZoneInfo("Europe/Amsterdam")
HISTORY_DAYS = 90
SIGNAL_DAYS = 3  # signal events fall in the last SIGNAL_DAYS days before as_of

# the generated files are exactly the import contract, so they always round-trip through `import`
COLUMNS = {
    kind: CONTRACTS[kind].columns
    for kind in ("customers", "transactions", "consents", "suppressions", "holdings")
}

OTHER_TIMEZONES = ("Europe/London", "America/Curacao", "Asia/Dubai", "America/New_York")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")  # reserved: never a real mailbox
SVB = ("Sociale Verzekeringsbank", "NL66INGB0000064210")  # counterparty for benefits and pensions
LANDLORDS = ("Ymere", "Eigen Haard", "Woonstad Rotterdam", "Portaal", "De Alliantie", "Vesteda")
SUPERMARKETS = ("Albert Heijn", "Jumbo", "Lidl", "Aldi", "Plus", "Dirk van den Broek")
BILLS = (("Vattenfall", "4900", "Energie"), ("Zilveren Kruis", "6300", "Zorgverzekering premie"))
SHOPS = (
    ("Bol.com", "5999", "Bestelling"),
    ("NS Reizigers", "4111", "Treinkaartje"),
    ("Shell", "5541", "Tankstation"),
    ("Restaurant De Kas", "5812", "Diner"),
    ("HEMA", "5311", "Winkelaankoop"),
)
AIRPORTS = (  # (description, city, country) of cash machines at airports
    ("Geldautomaat Schiphol Plaza", "Schiphol", "NL"),
    ("Geldautomaat Schiphol Vertrekhal 2", "Schiphol", "NL"),
    ("Geldautomaat Eindhoven Airport", "Eindhoven", "NL"),
    ("Geldautomaat Rotterdam The Hague Airport", "Rotterdam", "NL"),
    ("ATM Aeropuerto de Malaga", "Malaga", "ES"),
    ("ATM Flughafen Frankfurt", "Frankfurt am Main", "DE"),
    ("ATM London Heathrow Airport", "London", "GB"),
)
AIRLINES = (("KLM Royal Dutch Airlines", "3010"), ("Transavia", "3136"), ("easyJet", "4511"))
TOWN_ATMS = ("Utrecht Centraal", "Amsterdam Damrak", "Den Haag Spui", "Groningen Vismarkt")
LARGE_CREDITS = (
    ("Notariskantoor Van Dijk", "Verkoop woning"),
    ("Notariskantoor De Boer", "Erfenis"),
    ("Autobedrijf Jansen", "Verkoop auto"),
    ("Werkgever bonus", "Bonus uitbetaling"),
)
MONTHS = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)  # not strftime("%B"): that follows the machine's locale
PRODUCTS = ("savings_account", "credit_card", "travel_insurance", "investment_account")


@dataclass
class Summary:
    """What was written: the files and their row counts."""

    out_dir: Path
    as_of: date
    seed: int
    rows: dict[str, int] = field(default_factory=dict)

    def paths(self) -> dict[str, Path]:
        return {kind: self.out_dir / f"{kind}.csv" for kind in COLUMNS}


def generate(
    out_dir: str | Path, customers: int = 10_000, seed: int = 1, as_of: date | None = None
) -> Summary:
    """Write the synthetic bank's five files into ``out_dir`` (created if needed)."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    as_of = as_of or date.today()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bank = _Bank(seed, as_of)
    summary = Summary(out, as_of, seed)
    handles = {kind: (out / f"{kind}.csv").open("w", encoding="utf-8", newline="") for kind in COLUMNS}
    try:
        writers = {kind: csv.writer(handle, lineterminator="\n") for kind, handle in handles.items()}
        for kind, writer in writers.items():
            writer.writerow(COLUMNS[kind])
            summary.rows[kind] = 0
        for number in range(1, customers + 1):
            for kind, rows in bank.customer(number).items():
                writers[kind].writerows(rows)
                summary.rows[kind] += len(rows)
    finally:
        for handle in handles.values():
            handle.close()
    return summary


def _cents(value: int) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


class _Bank:
    """Draws one customer at a time; all randomness from one seeded Random and seeded Fakers."""

    def __init__(self, seed: int, as_of: date) -> None:
        self.rng = random.Random(seed)
        self.nl = Faker("nl_NL")
        self.nl.seed_instance(seed)
        self.en = Faker("en_GB")
        self.en.seed_instance(seed + 1)
        self.as_of = as_of
        self.first_day = as_of - timedelta(days=HISTORY_DAYS)
        self.employers = [(self.nl.company(), self.nl.iban()) for _ in range(200)]
        self.landlord_ibans = {name: self.nl.iban() for name in LANDLORDS}
        self.shop_ibans = {name: self.nl.iban() for name in (*SUPERMARKETS, *(b[0] for b in BILLS))}
        self._offsets: dict[date, str] = {}
        self._months: dict[int, list[date]] = {}

    # -- helpers ---------------------------------------------------------------------------
    def _int(self, low: int, high: int) -> int:
        """Like randint(low, high), at a fraction of its cost (it is called millions of times)."""
        return low + int(self.rng.random() * (high - low + 1))

    def _offset(self, day: date) -> str:
        """The bank's UTC offset on ``day`` (taken at noon: every stamp is after the 03:00 switch)."""
        offset = self._offsets.get(day)
        if offset is None:
            offset = datetime.combine(day, time(12), BANK_TIMEZONE).isoformat()[-6:]
            self._offsets[day] = offset
        return offset

    def _stamp(self, day: date, hour_from: int = 7, hour_to: int = 21) -> str:
        seconds = self._int(hour_from * 3600, hour_to * 3600 + 3599)
        hour, rest = divmod(seconds, 3600)
        return f"{day.isoformat()}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}{self._offset(day)}"

    def _recent_day(self) -> date:
        """A day inside the signal window: the last SIGNAL_DAYS days before as_of."""
        return self.as_of - timedelta(days=self._int(1, SIGNAL_DAYS))

    def _old_day(self) -> date:
        """A day of the history before the signal window."""
        return self.as_of - timedelta(days=self._int(SIGNAL_DAYS + 1, HISTORY_DAYS))

    def _month_days(self, day_of_month: int) -> list[date]:
        """That day of each month inside the history (the 28th at most)."""
        if day_of_month in self._months:
            return self._months[day_of_month]
        days = []
        cursor = date(self.first_day.year, self.first_day.month, 1)
        while cursor < self.as_of:
            candidate = cursor.replace(day=min(day_of_month, 28))
            if self.first_day <= candidate < self.as_of:
                days.append(candidate)
            cursor = (cursor + timedelta(days=32)).replace(day=1)
        self._months[day_of_month] = days
        return days

    # -- one customer ----------------------------------------------------------------------
    def customer(self, number: int) -> dict[str, list[tuple]]:
        rng = self.rng
        customer_id = f"C{number:07d}"
        english = rng.random() < 0.05
        fake = self.en if english else self.nl
        first, last = fake.first_name(), fake.last_name()
        age = self._int(14, 17) if rng.random() < 0.005 else self._int(18, 90)
        birth = self.as_of - timedelta(days=age * 365 + self._int(0, 364))
        timezone = rng.choice(OTHER_TIMEZONES) if rng.random() < 0.02 else "Europe/Amsterdam"
        street, house, postcode, city = (
            self.nl.street_name(),
            self.nl.building_number(),
            self.nl.postcode(),
            self.nl.city(),
        )
        postcode = f"{postcode[:4]} {postcode[-2:]}"  # Faker writes both 1234AB and 1234 AB
        if rng.random() < 0.01:
            street = ""  # an incomplete address: no letters for this customer
        row = (
            customer_id,
            first,
            last,
            "en" if english else "nl",
            birth.isoformat(),
            self._mobile(),
            self._email(first, last),
            street,
            house,
            postcode,
            city,
            "NL",
            timezone,
        )
        has_kids = 25 <= age <= 50 and rng.random() < 0.5
        return {
            "customers": [row],
            "transactions": self._transactions(customer_id, age, has_kids, city),
            "consents": self._consents(customer_id),
            "suppressions": self._suppressions(customer_id, age),
            "holdings": self._holdings(customer_id, has_kids),
        }

    def _mobile(self) -> str:
        rng = self.rng
        roll = rng.random()
        digits = str(self._int(10_000_000, 59_999_999))
        if roll < 0.02:
            return ""
        if roll < 0.05:  # broken: too short, or a pager range that is no mobile
            return rng.choice((f"+316{digits[:5]}", f"06-{digits[:4]}", f"+3166{digits[:7]}"))
        if roll < 0.15:
            return f"06-{digits}"
        if roll < 0.20:
            return f"06 {digits[:2]} {digits[2:5]} {digits[5:]}"
        return f"+316{digits}"

    def _email(self, first: str, last: str) -> str:
        rng = self.rng
        roll = rng.random()
        local = f"{_slug(first)}.{_slug(last)}{self._int(1, 99) if rng.random() < 0.4 else ''}"
        domain = rng.choice(EMAIL_DOMAINS)
        if roll < 0.02:
            return ""
        if roll < 0.05:  # broken
            return rng.choice((f"{local}@", f"{first} {last}@{domain}", f"{local}@{domain.split('.')[0]}"))
        return f"{local}@{domain}"

    def _transactions(self, customer_id: str, age: int, has_kids: bool, city: str) -> list[tuple]:
        rng = self.rng
        events: list[tuple[str, int, str, str, str, str, str, str]] = []

        def add(stamp, cents, name="", iban="", description="", mcc="", where="", country="NL"):
            events.append((stamp, cents, name, iban, description, mcc, where, country))

        # opening balance: most modest, some high all along (a decoy for the balance signal)
        roll = rng.random()
        if roll < 0.03:
            opening = self._int(3_000_000, 40_000_000)
        elif roll < 0.15:
            opening = self._int(1_000_000, 2_000_000)
        else:
            opening = self._int(20_000, 800_000)
        opening_stamp = datetime.combine(self.first_day - timedelta(days=1), time(0, 5), BANK_TIMEZONE)
        add(opening_stamp.isoformat(), opening, description="Beginsaldo")

        if age >= 67:  # state pension from the SVB: not child benefit
            for day in self._month_days(23):
                add(self._stamp(day, 6, 8), self._int(140_000, 160_000), *SVB, "AOW-uitkering")
        elif age >= 18 and rng.random() < 0.85:
            employer, iban = rng.choice(self.employers)
            salary = self._int(200_000, 550_000)
            for day in self._month_days(25):
                add(
                    self._stamp(day, 6, 8),
                    salary,
                    employer,
                    iban,
                    f"Salaris {MONTHS[day.month - 1]} {day.year}",
                )
        if age >= 18:
            landlord = rng.choice(LANDLORDS)
            rent = self._int(70_000, 160_000)
            for day in self._month_days(1):
                add(self._stamp(day, 6, 9), -rent, landlord, self.landlord_ibans[landlord], "Huur")
            for name, mcc, description in BILLS:
                amount = self._int(9_000, 18_000)
                for day in self._month_days(self._int(2, 27)):
                    add(self._stamp(day), -amount, name, self.shop_ibans[name], description, mcc)
        for _ in range(self._int(8, 13)):
            shop = rng.choice(SUPERMARKETS)
            add(
                self._stamp(self._old_day()),
                -self._int(800, 12_000),
                shop,
                "",
                "Betaalautomaat",
                "5411",
                city,
            )
        for _ in range(self._int(1, 4)):
            name, mcc, description = rng.choice(SHOPS)
            add(self._stamp(self._old_day()), -self._int(500, 9_000), name, "", description, mcc, city)
        if rng.random() < 0.5:  # an ordinary cash machine: no travel signal
            place = rng.choice(TOWN_ATMS)
            add(
                self._stamp(self._old_day()),
                -self._int(2, 15) * 1000,
                "",
                "",
                f"Geldautomaat {place}",
                "6011",
                place.split()[0],
            )

        if has_kids:  # quarterly child benefit; most of this quarter's payments just arrived
            children = rng.choice((1, 1, 2, 2, 3))
            day = self._recent_day() if rng.random() < 0.9 else self._old_day()
            amount = sum(self._int(27_000, 33_000) for _ in range(children))
            add(self._stamp(day, 6, 8), amount, *SVB, f"Kinderbijslag {children} kind(eren) kwartaal")
        if opening < 2_000_000 and rng.random() < 0.08:  # a large credit lifts the balance over €25,000
            name, description = rng.choice(LARGE_CREDITS)
            amount = (
                self._int(10_000_000, 40_000_000) if rng.random() < 0.15 else self._int(2_500_000, 6_000_000)
            )
            add(self._stamp(self._recent_day()), amount, name, self.nl.iban(), description)
        if rng.random() < 0.10:  # travel: a cash withdrawal at an airport, an airline ticket, or both
            roll = rng.random()
            day = self._recent_day()
            if roll < 0.6:
                description, where, country = rng.choice(AIRPORTS)
                add(self._stamp(day), -self._int(5, 30) * 1000, "", "", description, "6011", where, country)
            if roll >= 0.4:
                airline, mcc = rng.choice(AIRLINES)
                add(
                    self._stamp(day),
                    -self._int(9_000, 120_000),
                    airline,
                    "",
                    "Vliegticket",
                    mcc,
                    "Amsterdam",
                )
        elif rng.random() < 0.03:  # travelled weeks ago: no signal today
            description, where, country = rng.choice(AIRPORTS)
            add(
                self._stamp(self._old_day()),
                -self._int(5, 30) * 1000,
                "",
                "",
                description,
                "6011",
                where,
                country,
            )

        events.sort(key=lambda e: e[0][:19])
        return [
            (f"TX{customer_id[1:]}-{index:04d}", customer_id, stamp, _cents(cents), "EUR", *rest)
            for index, (stamp, cents, *rest) in enumerate(events, start=1)
        ]

    def _consents(self, customer_id: str) -> list[tuple]:
        rng = self.rng
        rows = []

        def at() -> str:
            return self._stamp(self.as_of - timedelta(days=self._int(HISTORY_DAYS + 1, 720)))

        source = rng.choice(("app", "internet_banking", "branch", "call_centre"))
        if rng.random() < 0.11:
            first = at()
            rows.append((customer_id, "all", "opt_out", source, first))
            if rng.random() < 0.09:  # changed their mind later
                rows.append((customer_id, "all", "opt_in", "app", self._stamp(self._old_day())))
        for scope, share in (("sms", 0.05), ("email", 0.04), ("letter", 0.03), ("phone", 0.06)):
            if rng.random() < share:
                rows.append((customer_id, scope, "opt_out", source, at()))
        if rng.random() < 0.02:
            rows.append((customer_id, "topic:investing", "opt_out", source, at()))
        return sorted(rows, key=lambda r: r[4][:19])

    def _suppressions(self, customer_id: str, age: int) -> list[tuple]:
        rng = self.rng
        rows = []
        if age < 18:
            rows.append((customer_id, "minor", (self.as_of - timedelta(days=age * 365)).isoformat(), ""))
        for reason, share in (
            ("vulnerable", 0.01),
            ("arrears", 0.02),
            ("deceased", 0.003),
            ("complaint", 0.005),
        ):
            if rng.random() < share:
                start = self.as_of - timedelta(days=self._int(10, 400))
                until = ""
                if reason in ("arrears", "complaint"):  # some have ended already
                    until = (start + timedelta(days=self._int(60, 240))).isoformat()
                rows.append((customer_id, reason, start.isoformat(), until))
        return rows

    def _holdings(self, customer_id: str, has_kids: bool) -> list[tuple]:
        rng = self.rng

        def opened() -> str:
            return (self.as_of - timedelta(days=self._int(100, 7000))).isoformat()

        rows = [(customer_id, "current_account", opened())]
        for product, share in zip(PRODUCTS, (0.4, 0.25, 0.15, 0.08), strict=True):
            if rng.random() < share:
                rows.append((customer_id, product, opened()))
        if has_kids and rng.random() < 0.3:
            rows.append((customer_id, "childrens_savings", opened()))
        return rows
