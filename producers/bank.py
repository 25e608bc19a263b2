"""Build the synthetic bank from a seed: customers, accounts, cards, merchants, counterparties,
instruments and portfolios. The same seed and size always give the same bank.

Primary keys are offset by the seed (``id_base``) so that banks built from different seeds can
share one database without colliding.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from producers import catalog, geo
from producers.model import Account, Card, Counterparty, Customer, Instrument, Merchant, Portfolio

UTC = dt.UTC

# Synthetic first octet of IPv4 addresses per country (not real allocations).
_IP_FIRST_OCTET = {
    "GB": 81,
    "IE": 86,
    "PT": 85,
    "FR": 90,
    "DE": 84,
    "ES": 88,
    "IT": 93,
    "NL": 145,
    "CH": 178,
    "PL": 83,
    "SE": 78,
    "TR": 88,
    "AE": 94,
    "NG": 102,
    "ZA": 105,
    "IN": 117,
    "TH": 171,
    "SG": 116,
    "HK": 112,
    "JP": 126,
    "AU": 101,
    "US": 98,
    "CA": 99,
    "MX": 187,
    "BR": 177,
}
_PHONE_PREFIX = {
    "GB": "+44",
    "IE": "+353",
    "PT": "+351",
    "FR": "+33",
    "DE": "+49",
    "ES": "+34",
    "IT": "+39",
    "NL": "+31",
}

_VENUES = {  # MIC -> currency
    "XLON": "GBP",
    "XPAR": "EUR",
    "XETR": "EUR",
    "XAMS": "EUR",
    "XNYS": "USD",
    "XNAS": "USD",
}


@dataclass(frozen=True, slots=True)
class BankSize:
    customers: int = 2000
    merchants_per_city_category: int = 2
    online_merchants_per_category: int = 3
    counterparties: int = 400
    equities: int = 40
    bonds: int = 8
    funds: int = 4
    fx_pairs: int = 6


@dataclass
class Bank:
    seed: int
    id_base: int
    customers: dict[int, Customer]
    accounts: dict[int, Account]
    cards: dict[int, Card]
    merchants: list[Merchant]
    counterparties: list[Counterparty]
    instruments: list[Instrument]
    portfolios: list[Portfolio]
    #: The bank's own customer (treasury), owner of the house trading accounts.
    house_customer_id: int
    merchants_by_city_mcc: dict[tuple[str, str], list[Merchant]] = field(default_factory=dict)
    online_merchants_by_mcc: dict[str, list[Merchant]] = field(default_factory=dict)

    def index(self) -> None:
        self.merchants_by_city_mcc.clear()
        self.online_merchants_by_mcc.clear()
        for m in self.merchants:
            if m.city is None:
                self.online_merchants_by_mcc.setdefault(m.mcc, []).append(m)
            else:
                self.merchants_by_city_mcc.setdefault((m.city.name, m.mcc), []).append(m)

    def apply_card_status(self, statuses: dict[int, str]) -> int:
        """Set card statuses known from elsewhere (the database of earlier runs); returns how many
        cards changed. Unknown card ids are ignored."""
        changed = 0
        for card_id, status in statuses.items():
            card = self.cards.get(card_id)
            if card is not None and card.status != status:
                card.status = status
                changed += 1
        return changed


def iban_for(country: str, account_id: int) -> str:
    """A syntactically valid IBAN (ISO 13616 check digits) for a synthetic account number."""
    bban = f"RIVB{account_id:014d}"
    rearranged = bban + country + "00"
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


def ip_in(country: str, rng: random.Random) -> str:
    first = _IP_FIRST_OCTET.get(country, 203)
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def device_id(rng: random.Random) -> str:
    return f"dev-{rng.getrandbits(48):012x}"


def build_bank(seed: int, size: BankSize | None = None) -> Bank:
    size = size or BankSize()
    rng = random.Random(f"riverbank-bank-{seed}")
    id_base = 10_000_000 * (seed % 900 + 1)
    epoch = dt.datetime(2015, 1, 1, tzinfo=UTC)

    def moment(days_back_max: int = 3000) -> dt.datetime:
        return epoch + dt.timedelta(days=rng.randrange(days_back_max), seconds=rng.randrange(86400))

    home_names = list(geo.HOME_CITY_WEIGHTS)
    home_weights = list(geo.HOME_CITY_WEIGHTS.values())
    ordinary = [c for c in catalog.CATEGORIES if not c.high_risk]
    customers: dict[int, Customer] = {}
    accounts: dict[int, Account] = {}
    cards: dict[int, Card] = {}
    next_account = id_base + 1
    next_card = id_base + 1
    travel_cities = [c for c in geo.CITIES]
    for i in range(1, size.customers + 1):
        cid = id_base + i
        home = geo.BY_NAME[rng.choices(home_names, home_weights)[0]]
        first, last = rng.choice(catalog.FIRST_NAMES), rng.choice(catalog.LAST_NAMES)
        habits = {c.mcc for c in rng.choices(ordinary, [c.weight for c in ordinary], k=rng.randint(6, 10))}
        habits.add("5411")
        if rng.random() < 0.03:
            habits.add("7995")  # some customers gamble legitimately
        trip = None
        if rng.random() < 0.04:
            trip = rng.choice([c for c in travel_cities if c.country != home.country])
        customer = Customer(
            customer_id=cid,
            external_ref=f"RB{cid:012d}",
            first_name=first,
            last_name=last,
            email=f"{first}.{last.replace(' ', '')}{i}@example.com".lower(),
            phone=f"{_PHONE_PREFIX.get(home.country, '+1')}{rng.randrange(10**8, 10**9)}",
            date_of_birth=dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(365 * 55)),
            home=home,
            kyc_status=rng.choices(["VERIFIED", "PENDING", "EXPIRED"], [95, 3, 2])[0],
            risk_rating=rng.choices(["LOW", "MEDIUM", "HIGH"], [80, 17, 3])[0],
            created_at=moment(),
            devices=tuple(device_id(rng) for _ in range(rng.randint(1, 3))),
            home_ip=ip_in(home.country, rng),
            habits=tuple(sorted(habits)),
            trip=trip,
        )
        customers[cid] = customer
        currency = "GBP" if home.country == "GB" else "EUR"
        kinds = ["CURRENT"]
        if rng.random() < 0.4:
            kinds.append("SAVINGS")
        if rng.random() < 0.15:
            kinds.append("CREDIT")
        for kind in kinds:
            aid = next_account
            next_account += 1
            opening = {
                "CURRENT": int(rng.lognormvariate(7.6, 1.0) * 100),
                "SAVINGS": int(rng.lognormvariate(9.2, 1.1) * 100),
                "CREDIT": 0,
            }[kind]
            accounts[aid] = Account(
                account_id=aid,
                customer_id=cid,
                iban=iban_for(home.country, aid),
                currency=currency,
                account_type=kind,
                status="OPEN",
                opening_balance_minor=opening,
                credit_limit_minor={"CURRENT": 100_000, "CREDIT": 500_000}.get(kind),
                opened_at=max(customer.created_at, moment()),
            )
            customer.account_ids.append(aid)
            n_cards = {"CURRENT": 1 + (rng.random() < 0.2), "CREDIT": 1}.get(kind, 0)
            for _ in range(n_cards):
                card_id = next_card
                next_card += 1
                issued = moment()
                cards[card_id] = Card(
                    card_id=card_id,
                    token=f"tok_{rng.getrandbits(64):016x}",
                    account_id=aid,
                    customer_id=cid,
                    pan_last4=f"{rng.randrange(10000):04d}",
                    scheme=rng.choices(["VISA", "MASTERCARD"], [55, 45])[0],
                    card_type="CREDIT" if kind == "CREDIT" else "DEBIT",
                    status="ACTIVE",
                    expiry_month=rng.randint(1, 12),
                    expiry_year=rng.randint(2027, 2031),
                    daily_limit_minor=rng.choice([100_000, 250_000, 500_000]),
                    issued_at=issued,
                )
                customer.card_ids.append(card_id)

    # The bank's own treasury: a customer row and the cash accounts of the house portfolios.
    house_id = id_base
    customers[house_id] = Customer(
        customer_id=house_id,
        external_ref=f"RB{house_id:012d}",
        first_name="Riverbank",
        last_name="Treasury",
        email="treasury@riverbank.example",
        phone="+442000000000",
        date_of_birth=dt.date(2000, 1, 1),
        home=geo.BY_NAME["London"],
        kyc_status="VERIFIED",
        risk_rating="LOW",
        created_at=epoch,
        devices=(),
        home_ip="81.0.0.1",
        habits=(),
    )

    merchants: list[Merchant] = []
    for city in geo.CITIES:
        for cat in catalog.CATEGORIES:
            if cat.online_share >= 1.0:
                continue
            n = size.merchants_per_city_category * (2 if city.name in geo.HOME_CITY_WEIGHTS else 1)
            for k in range(n):
                base = rng.choice(cat.merchant_names)
                name = base if cat.mcc == catalog.ATM_MCC else f"{base} {city.name}"
                merchants.append(
                    Merchant(
                        f"M{len(merchants) + 1:06d}",
                        name if k == 0 else f"{name} {k + 1}",
                        cat.mcc,
                        city.country,
                        city,
                    )
                )
    for cat in catalog.CATEGORIES:
        if cat.online_share <= 0:
            continue
        for k in range(size.online_merchants_per_category):
            country = rng.choice(["GB", "IE", "NL", "US", "DE", "CY", "MT"])
            merchants.append(
                Merchant(
                    f"M{len(merchants) + 1:06d}",
                    f"{rng.choice(cat.merchant_names)} Online {k + 1}",
                    cat.mcc,
                    country,
                    None,
                )
            )

    counterparties: list[Counterparty] = []
    for n in range(1, size.counterparties + 1):
        abroad = rng.random() < 0.15
        country = (
            rng.choice(["US", "AE", "HK", "SG", "NG", "TR", "CH", "BR"])
            if abroad
            else rng.choice(["GB", "FR", "DE", "ES", "IT", "NL", "IE", "PT", "BE", "AT"])
        )
        person = rng.random() < 0.4
        name = (
            f"{rng.choice(catalog.FIRST_NAMES)} {rng.choice(catalog.LAST_NAMES)}"
            if person
            else f"{rng.choice(catalog.COMPANY_WORDS)} {rng.choice(catalog.COMPANY_SUFFIXES)}"
        )
        bank_code = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
        counterparties.append(
            Counterparty(
                counterparty_id=f"CP{n:05d}",
                name=name,
                iban=iban_for(country, rng.randrange(10**12)),
                bic=f"{bank_code}{country}{rng.choice(['2L', '22', 'XX', 'MM'])}",
                country=country,
            )
        )

    instruments: list[Instrument] = []
    venues = list(_VENUES)
    for n in range(1, size.equities + 1):
        venue = rng.choice(venues)
        symbol = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 4)))
        price = round(rng.lognormvariate(4.0, 0.8), 2)
        instruments.append(
            Instrument(
                f"EQ{n:04d}",
                _isin(venue, n, rng),
                symbol,
                "EQUITY",
                _VENUES[venue],
                venue,
                int(price * 1e8),
                rng.choice([10, 50, 100, 200]),
            )
        )
    for n in range(1, size.bonds + 1):
        instruments.append(
            Instrument(
                f"BD{n:04d}",
                _isin("XLON", 500 + n, rng),
                f"GOV{n:02d}",
                "BOND",
                "EUR",
                "XETR",
                int(rng.uniform(92, 104) * 1e8),
                10_000,
            )
        )
    for n in range(1, size.funds + 1):
        instruments.append(
            Instrument(
                f"FD{n:04d}",
                _isin("XAMS", 800 + n, rng),
                f"RBF{n}",
                "FUND",
                "EUR",
                "XAMS",
                int(rng.uniform(20, 200) * 1e8),
                20,
            )
        )
    for n, pair in enumerate(
        ["EURUSD", "EURGBP", "EURCHF", "EURJPY", "GBPUSD", "EURSEK"][: size.fx_pairs], 1
    ):
        base, quote = pair[:3], pair[3:]
        rate = geo.EUR_RATES[quote] / geo.EUR_RATES[base]
        instruments.append(
            Instrument(f"FX{n:04d}", None, pair, "FX", quote, "XOFF", int(rate * 1e8), 100_000)
        )

    portfolios: list[Portfolio] = []
    investors = [c for c in customers.values() if c.customer_id != house_id and rng.random() < 0.1]
    for c in investors:
        portfolios.append(Portfolio(f"PF{c.customer_id}", c.account_ids[0], c.customer_id, None))
    for n in range(1, 6):
        aid = next_account
        next_account += 1
        accounts[aid] = Account(
            aid, house_id, iban_for("GB", aid), "EUR", "CURRENT", "OPEN", 5_000_000_000, None, epoch
        )
        customers[house_id].account_ids.append(aid)
        portfolios.append(Portfolio(f"PFH{n:03d}", aid, None, f"trader-{n:02d}"))

    bank = Bank(
        seed,
        id_base,
        customers,
        accounts,
        cards,
        merchants,
        counterparties,
        instruments,
        portfolios,
        house_id,
    )
    bank.index()
    return bank


def _isin(venue: str, n: int, rng: random.Random) -> str:
    country = {"XLON": "GB", "XPAR": "FR", "XETR": "DE", "XAMS": "NL", "XNYS": "US", "XNAS": "US"}[venue]
    body = f"{country}{rng.randrange(10**9):09d}"
    digits = "".join(str(int(ch, 36)) for ch in body)
    # Luhn over the digit string gives the ISIN check digit.
    total = 0
    for pos, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if pos % 2 == 0 else 1)
        total += d // 10 + d % 10
    return body + str((10 - total % 10) % 10)
