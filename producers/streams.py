"""Event generators, one per stream, with fraud scenarios injected into the card and payment streams.

A generator is asked for the event of one *slot* at a simulated time ``t_ms``. A slot carries a
background event unless a scheduled step (a payment's settlement, the next move of a fraud
scenario) is due, in which case that step takes the slot. Side records (balance movements, table
changes, fraud labels) are appended to ``side`` for the caller to route.

Everything is drawn from ``random.Random`` instances seeded from the run's seed: the same seed,
rates and start time give the same events, byte for byte.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from producers import catalog, geo
from producers.bank import Bank, device_id, ip_in
from producers.market import Market
from producers.model import (
    Account,
    BalanceMovement,
    BankChange,
    Card,
    CardTransaction,
    CardUpdate,
    Counterparty,
    Customer,
    CustomerUpdate,
    Event,
    FraudLabel,
    FraudPattern,
    Merchant,
    Payment,
    PriceTick,
    Stream,
    Trade,
    event_id_of,
)

Side = FraudLabel | BankChange
T = TypeVar("T")

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_CATEGORY = {c.mcc: c for c in catalog.CATEGORIES}
#: Where fraudsters connect from and where cloned cards are cashed out.
_FRAUD_COUNTRIES = ("NG", "BR", "TH", "US", "TR", "IN", "AE", "MX")
#: The currency transaction report threshold structuring stays under (in the account currency).
STRUCTURING_THRESHOLD_MINOR = 1_000_000
_NV_MAGICCONST = 4 * math.exp(-0.5) / math.sqrt(2.0)  # random.NV_MAGICCONST
_log, _exp = math.log, math.exp


#: The RFC 4122 variant digit for each hex digit drawn in its place.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def fast_uuid4(rng: random.Random) -> str:
    """A version-4 UUID string from ``rng`` (deterministic, unlike uuid.uuid4())."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


#: Currency of the first listed city of each country (online merchants have no city).
_CURRENCY_OF_COUNTRY: dict[str, str] = {}
for _city in geo.CITIES:
    _CURRENCY_OF_COUNTRY.setdefault(_city.country, _city.currency)


def currency_of_country(country: str) -> str:
    return _CURRENCY_OF_COUNTRY.get(country, "EUR")


class _Population(Generic[T]):
    """Items grouped by UTC offset, picked with a weight that follows the local hour of day."""

    def __init__(self, groups: dict[int, list[T]], profile: tuple[float, ...]) -> None:
        offsets = sorted(g for g in groups if groups[g])
        self._items = [groups[o] for o in offsets]
        self._cum: list[list[float]] = []
        for utc_hour in range(24):
            weights = [len(groups[o]) * profile[(utc_hour + o) % 24] for o in offsets]
            total = 0.0
            cum = []
            for w in weights:
                total += w
                cum.append(total)
            self._cum.append(cum)

    def pick(self, rng: random.Random, utc_hour: int) -> T:
        cum = self._cum[utc_hour]
        bucket = bisect.bisect_right(cum, rng.random() * cum[-1])
        items = self._items[min(bucket, len(self._items) - 1)]
        return items[int(rng.random() * len(items))]


@dataclass
class Scenario:
    """One injected fraud in progress; becomes a FraudLabel when its last step is emitted."""

    pattern: FraudPattern
    stream: Stream
    customer_id: int
    account_id: int
    card_token: str | None
    description: str
    open_steps: int = 0
    fraud_ids: list[str] = field(default_factory=list)
    context_ids: list[str] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int = 0


@dataclass(order=True)
class _Step:
    due_ms: float
    seq: int
    make: Callable[[int], Event] = field(compare=False)
    scenario: Scenario | None = field(default=None, compare=False)
    context: bool = field(default=False, compare=False)


class StreamGenerator:
    stream: ClassVar[Stream]

    def __init__(self, bank: Bank, seed: int, fraud_rate: float) -> None:
        self.bank = bank
        self.rng = random.Random(f"riverbank-{self.stream.value}-{seed}")
        self.seed = seed
        self.fraud_rate = fraud_rate
        self.side: list[Side] = []
        self._pending: list[_Step] = []
        self._seq = 0
        self._counter = 0
        #: Simulated end of the run; scenarios that cannot finish before it are not started.
        self.end_ms: float = math.inf

    # -- scheduling ---------------------------------------------------------------------------

    def schedule(
        self,
        due_ms: float,
        make: Callable[[int], Event],
        scenario: Scenario | None = None,
        context: bool = False,
    ) -> None:
        self._seq += 1
        if scenario is not None:
            scenario.open_steps += 1
        heapq.heappush(self._pending, _Step(due_ms, self._seq, make, scenario, context))

    def next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self.seed:x}-{self._counter:09d}"

    def slot(self, t_ms: int) -> Event:
        """The event of the slot at ``t_ms``."""
        pending = self._pending
        if pending and pending[0].due_ms <= t_ms:
            return self._run(heapq.heappop(pending), t_ms)
        if self.fraud_rate and self.rng.random() < self.fraud_rate:
            started = self.start_fraud(t_ms)
            if started and pending and pending[0].due_ms <= t_ms:
                return self._run(heapq.heappop(pending), t_ms)
        return self.background(t_ms)

    def finish(self) -> list[Event]:
        """At the end of the run: emit the remaining steps of fraud scenarios so none is left half done.

        Background follow-ups (e.g. settlements) due after the end are dropped; nothing was
        emitted for them.
        """
        out: list[Event] = []
        while self._pending:
            step = heapq.heappop(self._pending)
            if step.scenario is not None:
                out.append(self._run(step, int(step.due_ms)))
        return out

    def _run(self, step: _Step, t_ms: int) -> Event:
        event = step.make(t_ms)
        sc = step.scenario
        if sc is not None:
            (sc.context_ids if step.context else sc.fraud_ids).append(event_id_of(event))
            if sc.first_ms is None:
                sc.first_ms = t_ms
            sc.last_ms = t_ms
            sc.open_steps -= 1
            if sc.open_steps == 0:
                self.side.append(
                    FraudLabel(
                        label_id=fast_uuid4(self.rng),
                        pattern=sc.pattern,
                        stream=sc.stream,
                        event_ids=tuple(sc.fraud_ids),
                        context_event_ids=tuple(sc.context_ids),
                        customer_id=sc.customer_id,
                        account_id=sc.account_id,
                        card_id=sc.card_token,
                        first_event_time_ms=sc.first_ms,
                        last_event_time_ms=sc.last_ms,
                        description=sc.description,
                    )
                )
        return event

    def squeeze(self, t_ms: float, span_ms: float) -> float:
        """Factor (0 < f <= 1) to scale a scenario's gaps so it ends before the run does; 0 when
        fewer than 3 simulated seconds are left."""
        remaining = (self.end_ms - t_ms) * 0.8
        if remaining < 3000:
            return 0.0
        return min(1.0, remaining / span_ms) if span_ms > 0 else 1.0

    # -- to override ----------------------------------------------------------------------------

    def background(self, t_ms: int) -> Event:
        raise NotImplementedError

    def start_fraud(self, t_ms: int) -> bool:
        return False


def _groups_by_offset(items: list[T], offset_of: Callable[[T], int]) -> dict[int, list[T]]:
    groups: dict[int, list[T]] = {}
    for item in items:
        groups.setdefault(offset_of(item), []).append(item)
    return groups


# ---- card transactions --------------------------------------------------------------------------


class CardStream(StreamGenerator):
    stream: ClassVar[Stream] = Stream.TRANSACTIONS

    def __init__(self, bank: Bank, seed: int, fraud_rate: float) -> None:
        super().__init__(bank, seed, fraud_rate)
        cards = [c for c in bank.cards.values()]
        self._cards = cards
        self._population = _Population(
            _groups_by_offset(cards, lambda c: bank.customers[c.customer_id].current_city.utc_offset),
            catalog.overall_activity(),
        )
        self._category_cache: dict[
            tuple[tuple[str, ...], int], tuple[list[float], list[catalog.Category]]
        ] = {}
        #: Per customer, the (cum, cats) of ``_categories`` for each local hour: one int lookup
        #: per event instead of hashing the habits tuple.
        self._category_days: dict[int, list[tuple[list[float], list[catalog.Category]]]] = {}
        self._mu_cache: dict[tuple[str, str], float] = {}
        self._patterns = (
            (FraudPattern.CARD_TESTING, self._card_testing),
            (FraudPattern.IMPOSSIBLE_TRAVEL, self._impossible_travel),
            (FraudPattern.MERCHANT_ANOMALY, self._merchant_anomaly),
        )
        self._far_cities = [c for c in geo.CITIES if c.name not in geo.HOME_CITY_WEIGHTS]
        self._customers = bank.customers
        self._accounts = bank.accounts
        self._seed_hex = f"{seed:x}"

    def _categories(
        self, habits: tuple[str, ...], local_hour: int
    ) -> tuple[list[float], list[catalog.Category]]:
        key = (habits, local_hour)
        hit = self._category_cache.get(key)
        if hit is None:
            cats = [_CATEGORY[m] for m in habits]
            cum: list[float] = []
            total = 0.0
            for c in cats:
                total += max(c.weight, 0.5) * catalog.HOUR_PROFILES[c.profile][local_hour]
                cum.append(total)
            hit = (cum, cats)
            self._category_cache[key] = hit
        return hit

    def _mu(self, cat: catalog.Category, currency: str) -> float:
        key = (cat.mcc, currency)
        mu = self._mu_cache.get(key)
        if mu is None:
            mu = math.log(cat.median_eur * geo.EUR_RATES[currency])
            self._mu_cache[key] = mu
        return mu

    def _amount_minor(self, cat: catalog.Category, currency: str, scale: float = 1.0) -> int:
        return max(50, int(self.rng.lognormvariate(self._mu(cat, currency), cat.sigma) * 100 * scale))

    def _merchant(self, cat: catalog.Category, city: geo.City, online: bool) -> Merchant:
        rng = self.rng
        pool = None if online else self.bank.merchants_by_city_mcc.get((city.name, cat.mcc))
        if not pool:
            pool = (
                self.bank.online_merchants_by_mcc.get(cat.mcc)
                or self.bank.merchants_by_city_mcc[(city.name, "5411")]
            )
        return pool[int(rng.random() * len(pool))]

    def _transaction(
        self,
        t_ms: int,
        card: Card,
        customer: Customer,
        merchant: Merchant,
        amount_minor: int,
        *,
        channel: str,
        entry_mode: str,
        card_present: bool,
        device: str | None,
        ip: str | None,
        status: str = "APPROVED",
        decline_reason: str | None = None,
    ) -> CardTransaction:
        currency = merchant.city.currency if merchant.city else currency_of_country(merchant.country)
        return self._new_transaction(
            t_ms, card, merchant, currency, amount_minor, channel, entry_mode, card_present, device, ip,
            status, decline_reason,
        )  # fmt: skip

    def _new_transaction(
        self,
        t_ms: int,
        card: Card,
        merchant: Merchant,
        currency: str,
        amount_minor: int,
        channel: str,
        entry_mode: str,
        card_present: bool,
        device: str | None,
        ip: str | None,
        status: str,
        decline_reason: str | None,
    ) -> CardTransaction:
        account_currency = self._accounts[card.account_id].currency
        billing = geo.convert_minor(amount_minor, currency, account_currency)
        if card.status != "ACTIVE" and status == "APPROVED":
            status, decline_reason = "DECLINED", "CARD_BLOCKED"
        self._counter += 1
        event_id = fast_uuid4(self.rng)
        event = CardTransaction(
            event_id,
            f"A{self._seed_hex}{self._counter:011d}",
            card,
            merchant,
            amount_minor,
            currency,
            billing,
            account_currency,
            channel,
            entry_mode,
            status,
            decline_reason,
            card_present,
            device,
            ip,
            t_ms,
        )
        if status == "APPROVED":
            self.side.append(BalanceMovement(card.account_id, -billing, event_id, "CARD", t_ms))
        return event

    def background(self, t_ms: int) -> CardTransaction:
        # The hot path of the card stream (50,000 events/s): _Population.pick, _categories and
        # lognormvariate are inlined here with the same draws in the same order, so a seed gives
        # the same events as the general helpers would.
        rng = self.rng
        random_ = rng.random
        utc_hour = (t_ms // _HOUR_MS) % 24
        population = self._population
        cum = population._cum[utc_hour]
        groups = population._items
        group = groups[min(bisect.bisect_right(cum, random_() * cum[-1]), len(groups) - 1)]
        card = group[int(random_() * len(group))]
        customer_id = card.customer_id
        customer = self._customers[customer_id]
        city = customer.trip or customer.home
        day = self._category_days.get(customer_id)
        if day is None:
            day = [self._categories(customer.habits, hour) for hour in range(24)]
            self._category_days[customer_id] = day
        cum, cats = day[(utc_hour + city.utc_offset) % 24]
        cat = cats[bisect.bisect_right(cum, random_() * cum[-1])]
        online = random_() < cat.online_share
        merchant = self._merchant(cat, city, online)
        merchant_city = merchant.city
        currency = merchant_city.currency if merchant_city else currency_of_country(merchant.country)
        mu = self._mu_cache.get((cat.mcc, currency))
        if mu is None:
            mu = self._mu(cat, currency)
        while True:  # random.normalvariate (Kinderman-Monahan), as lognormvariate draws it
            u1 = random_()
            u2 = 1.0 - random_()
            z = _NV_MAGICCONST * (u1 - 0.5) / u2
            if z * z / 4.0 <= -_log(u2):
                break
        amount = max(50, int(_exp(mu + z * cat.sigma) * 100))
        if online:
            channel, entry, present = "ECOM", "TOKENIZED" if random_() < 0.6 else "MANUAL", False
            device = customer.devices[0] if customer.devices else None
            ip = customer.home_ip if customer.trip is None else ip_in(city.country, rng)
        elif cat.mcc == catalog.ATM_MCC:
            channel, entry, present, device, ip = "ATM", "CHIP", True, None, None
            amount = max(2000, round(amount, -3))
        else:
            device = ip = None
            present = True
            if amount < 5000 * geo.EUR_RATES[currency] and random_() < 0.6:
                channel, entry = "CONTACTLESS", "CONTACTLESS"
            else:
                channel, entry = "POS", "SWIPE" if city.country == "US" and random_() < 0.3 else "CHIP"
        roll = random_()
        status, reason = "APPROVED", None
        if roll < 0.015:
            status = "DECLINED"
            reason = "INCORRECT_PIN" if present else "DO_NOT_HONOR"
            if roll < 0.008:
                reason = "INSUFFICIENT_FUNDS"
        return self._new_transaction(
            t_ms, card, merchant, currency, amount, channel, entry, present, device, ip, status, reason
        )

    def start_fraud(self, t_ms: int) -> bool:
        _, start = self._patterns[int(self.rng.random() * len(self._patterns))]
        return start(t_ms)

    def _victim(self) -> tuple[Card, Customer] | None:
        for _ in range(20):
            card = self._cards[int(self.rng.random() * len(self._cards))]
            customer = self.bank.customers[card.customer_id]
            if card.status == "ACTIVE" and customer.trip is None:
                return card, customer
        return None

    def _card_testing(self, t_ms: int) -> bool:
        rng = self.rng
        n = rng.randint(8, 20)
        gaps = [rng.uniform(500, 4000) for _ in range(n)]
        squeeze = self.squeeze(t_ms, sum(gaps))
        victim = self._victim()
        if victim is None or not squeeze:
            return False
        gaps = [g * squeeze for g in gaps]
        span = sum(gaps)
        card, customer = victim
        attacker_country = rng.choice(_FRAUD_COUNTRIES)
        device, ip = device_id(rng), ip_in(attacker_country, rng)
        sc = Scenario(
            FraudPattern.CARD_TESTING,
            self.stream,
            customer.customer_id,
            card.account_id,
            card.token,
            f"{n} small e-commerce authorizations in {span / 1000:.0f}s "
            f"from a new device in {attacker_country}",
        )
        merchants = [
            rng.choice(self.bank.online_merchants_by_mcc[rng.choice(catalog.CARD_TESTING_MCCS)])
            for _ in range(3)
        ]
        due = float(t_ms)
        for i in range(n):
            merchant = merchants[i % len(merchants)]
            amount = rng.choice([50, 100, 100, 150, 199, 200])
            declined = rng.random() < 0.55
            last = i == n - 1

            def make(
                t: int,
                merchant: Merchant = merchant,
                amount: int = amount,
                declined: bool = declined,
                last: bool = last,
            ) -> Event:
                ev = self._transaction(
                    t,
                    card,
                    customer,
                    merchant,
                    amount,
                    channel="ECOM",
                    entry_mode="MANUAL",
                    card_present=False,
                    device=device,
                    ip=ip,
                    status="DECLINED" if declined else "APPROVED",
                    decline_reason="INVALID_CVV" if declined else None,
                )
                if last:
                    card.status = "BLOCKED"
                    self.side.append(CardUpdate(card.card_id, "BLOCKED", "FRAUD_SUSPECTED", t))
                return ev

            self.schedule(due, make, sc)
            due += gaps[i]
        return True

    def _impossible_travel(self, t_ms: int) -> bool:
        rng = self.rng
        victim = self._victim()
        gap = rng.uniform(30_000, 600_000)
        squeeze = self.squeeze(t_ms, gap * 1.5)
        if victim is None or not squeeze:
            return False
        gap *= squeeze
        card, customer = victim
        home = customer.home
        far = rng.choice([c for c in self._far_cities if geo.distance_km(c, home) > 2000])
        hours = gap / _HOUR_MS
        km = geo.distance_km(home, far)
        sc = Scenario(
            FraudPattern.IMPOSSIBLE_TRAVEL,
            self.stream,
            customer.customer_id,
            card.account_id,
            card.token,
            f"card present in {home.name} then in {far.name} ({km:.0f} km) {gap / 60_000:.1f} min later "
            f"({km / hours:.0f} km/h)",
        )
        home_cat = _CATEGORY[
            rng.choice([m for m in customer.habits if _CATEGORY[m].online_share < 1.0] or ["5411"])
        ]

        def genuine(t: int) -> Event:
            merchant = self._merchant(home_cat, home, online=False)
            currency = home.currency
            return self._transaction(
                t,
                card,
                customer,
                merchant,
                self._amount_minor(home_cat, currency),
                channel="POS",
                entry_mode="CHIP",
                card_present=True,
                device=None,
                ip=None,
            )

        self.schedule(float(t_ms), genuine, sc, context=True)
        n_far = rng.randint(1, 3)
        for k in range(n_far):
            mcc = rng.choice(["5732", "6011", "5944", "5311"])

            def cloned(t: int, mcc: str = mcc) -> Event:
                cat = _CATEGORY[mcc]
                merchant = self._merchant(cat, far, online=False)
                amount = self._amount_minor(cat, far.currency, scale=2.0)
                channel = "ATM" if mcc == catalog.ATM_MCC else "POS"
                return self._transaction(
                    t,
                    card,
                    customer,
                    merchant,
                    amount,
                    channel=channel,
                    entry_mode="SWIPE",
                    card_present=True,
                    device=None,
                    ip=None,
                )

            self.schedule(t_ms + gap + k * gap / 6, cloned, sc)
        return True

    def _merchant_anomaly(self, t_ms: int) -> bool:
        rng = self.rng
        victim = self._victim()
        n = rng.randint(1, 3)
        gaps = [rng.uniform(5_000, 60_000) for _ in range(n)]
        squeeze = self.squeeze(t_ms, sum(gaps))
        if victim is None or not squeeze:
            return False
        gaps = [g * squeeze for g in gaps]
        card, customer = victim
        risky = [c for c in catalog.CATEGORIES if c.high_risk and c.mcc not in customer.habits]
        cat = rng.choice(risky)
        sc = Scenario(
            FraudPattern.MERCHANT_ANOMALY,
            self.stream,
            customer.customer_id,
            card.account_id,
            card.token,
            f"{n} large purchase(s) in category {cat.mcc} ({cat.label}), never used by this customer",
        )
        due = float(t_ms)
        for gap in gaps:

            def make(t: int) -> Event:
                online = rng.random() < cat.online_share
                merchant = self._merchant(cat, customer.home, online)
                currency = merchant.city.currency if merchant.city else currency_of_country(merchant.country)
                amount = self._amount_minor(cat, currency, scale=rng.uniform(1.5, 4.0))
                return self._transaction(
                    t,
                    card,
                    customer,
                    merchant,
                    amount,
                    channel="ECOM" if online else "POS",
                    entry_mode="MANUAL" if online else "CHIP",
                    card_present=not online,
                    device=customer.devices[0] if online and customer.devices else None,
                    ip=customer.home_ip if online else None,
                )

            self.schedule(due, make, sc)
            due += gap
        return True


# ---- payments -----------------------------------------------------------------------------------

_PAYMENT_TYPES = (
    ("SEPA_CREDIT", 45),
    ("SEPA_INSTANT", 25),
    ("INTERNAL", 15),
    ("SWIFT", 5),
    ("CARD_TOPUP", 5),
    ("WIRE", 5),
)
_PAYMENT_CHANNELS = (("MOBILE", 55), ("WEB", 30), ("BRANCH", 5), ("API", 5), ("BATCH", 5))
_REMITTANCE = ("Invoice {n}", "Rent {m}", "Thanks!", "Order {n}", "Dinner", "Loan repayment", None, None)


def _cum(pairs: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    names = [p[0] for p in pairs]
    cum: list[int] = []
    total = 0
    for _, w in pairs:
        total += w
        cum.append(total)
    return names, cum


class PaymentStream(StreamGenerator):
    stream: ClassVar[Stream] = Stream.PAYMENTS

    def __init__(self, bank: Bank, seed: int, fraud_rate: float) -> None:
        super().__init__(bank, seed, fraud_rate)
        payers = [c for c in bank.customers.values() if c.customer_id != bank.house_customer_id]
        self._payers = payers
        self._population = _Population(
            _groups_by_offset(payers, lambda c: c.current_city.utc_offset), catalog.HOUR_PROFILES["day"]
        )
        self._types = _cum(_PAYMENT_TYPES)
        self._channels = _cum(_PAYMENT_CHANNELS)
        self._patterns = (
            (FraudPattern.ACCOUNT_TAKEOVER, self._account_takeover),
            (FraudPattern.STRUCTURING, self._structuring),
        )

    def _pick(self, table: tuple[list[str], list[int]]) -> str:
        names, cum = table
        return names[bisect.bisect_right(cum, self.rng.random() * cum[-1])]

    def _payment(
        self,
        t_ms: int,
        *,
        payment_id: str,
        payment_type: str,
        debtor: Account,
        creditor: Account | Counterparty,
        amount_minor: int,
        status: str,
        channel: str,
        remittance: str | None,
        device: str | None,
        ip: str | None,
        ip_country: str | None,
        execution_date: dt.date,
    ) -> Payment:
        if isinstance(creditor, Account):
            owner = self.bank.customers[creditor.customer_id]
            c_account, c_iban, c_name, c_bic, c_country = (
                creditor.account_id,
                creditor.iban,
                f"{owner.first_name} {owner.last_name}",
                "RIVBGB2L",
                creditor.iban[:2],
            )
        else:
            c_account, c_iban, c_name, c_bic, c_country = (
                None,
                creditor.iban,
                creditor.name,
                creditor.bic,
                creditor.country,
            )
        event = Payment(
            event_id=fast_uuid4(self.rng),
            payment_id=payment_id,
            payment_type=payment_type,
            debtor_account_id=debtor.account_id,
            debtor_customer_id=debtor.customer_id,
            creditor_account_id=c_account,
            creditor_iban=c_iban,
            creditor_name=c_name,
            creditor_bic=c_bic,
            creditor_country=c_country,
            amount_minor=amount_minor,
            currency=debtor.currency,
            status=status,
            remittance_info=remittance,
            channel=channel,
            requested_execution_date=execution_date,
            event_time_ms=t_ms,
            device_id=device,
            ip_address=ip,
            ip_country=ip_country,
        )
        if status == "SETTLED":
            self.side.append(
                BalanceMovement(debtor.account_id, -amount_minor, event.event_id, "PAYMENT_OUT", t_ms)
            )
            if isinstance(creditor, Account):
                credited = geo.convert_minor(amount_minor, debtor.currency, creditor.currency)
                self.side.append(
                    BalanceMovement(creditor.account_id, credited, event.event_id, "PAYMENT_IN", t_ms)
                )
        return event

    def _initiate(
        self,
        due_ms: float,
        settle_delay_ms: float,
        scenario: Scenario | None,
        reject_p: float,
        **fields: object,
    ) -> None:
        """Schedule INITIATED at ``due_ms`` and SETTLED (or REJECTED) ``settle_delay_ms`` later."""
        rejected = self.rng.random() < reject_p

        def initiated(t: int) -> Event:
            return self._payment(t, status="INITIATED", **fields)  # type: ignore[arg-type]

        def final(t: int) -> Event:
            return self._payment(t, status="REJECTED" if rejected else "SETTLED", **fields)  # type: ignore[arg-type]

        self.schedule(due_ms, initiated, scenario)
        self.schedule(due_ms + settle_delay_ms, final, scenario)

    def background(self, t_ms: int) -> Payment:
        rng = self.rng
        payer = self._population.pick(rng, (t_ms // _HOUR_MS) % 24)
        debtor = self.bank.accounts[payer.account_ids[0]]
        ptype = self._pick(self._types)
        channel = self._pick(self._channels)
        creditor: Account | Counterparty
        if ptype == "INTERNAL":
            own = [a for a in payer.account_ids[1:]]
            if own and rng.random() < 0.6:
                creditor = self.bank.accounts[own[int(rng.random() * len(own))]]
            else:
                other = self._payers[int(rng.random() * len(self._payers))]
                creditor = self.bank.accounts[other.account_ids[0]]
        else:
            creditor = self.bank.counterparties[int(rng.random() * len(self.bank.counterparties))]
        median = 1500.0 if ptype in ("SWIFT", "WIRE") else 120.0
        amount = max(
            100, int(rng.lognormvariate(math.log(median * geo.EUR_RATES[debtor.currency]), 1.1) * 100)
        )
        online = channel in ("MOBILE", "WEB")
        country = payer.current_city.country
        fields = dict(
            payment_id=self.next_id("P"),
            payment_type=ptype,
            debtor=debtor,
            creditor=creditor,
            amount_minor=amount,
            channel=channel,
            remittance=self._remittance(),
            device=payer.devices[0] if online and payer.devices else None,
            ip=(payer.home_ip if payer.trip is None else ip_in(country, rng)) if online else None,
            ip_country=country if online else None,
            execution_date=dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC).date(),
        )
        delay = (
            rng.uniform(500, 3000) if ptype in ("SEPA_INSTANT", "INTERNAL") else rng.uniform(5_000, 60_000)
        )
        rejected = rng.random() < 0.03
        self.schedule(
            t_ms + delay,
            lambda t: self._payment(t, status="REJECTED" if rejected else "SETTLED", **fields),  # type: ignore[arg-type]
        )
        return self._payment(t_ms, status="INITIATED", **fields)  # type: ignore[arg-type]

    def _remittance(self) -> str | None:
        template = self.rng.choice(_REMITTANCE)
        if template is None:
            return None
        return template.format(
            n=self.rng.randrange(10_000, 99_999), m=self.rng.choice(["Jan", "Feb", "Mar", "Apr"])
        )

    def start_fraud(self, t_ms: int) -> bool:
        _, start = self._patterns[int(self.rng.random() * len(self._patterns))]
        return start(t_ms)

    def _mule(self, country: str) -> Counterparty:
        rng = self.rng
        n = rng.randrange(10**12)
        from producers.bank import iban_for

        return Counterparty(
            f"MULE{n:012d}",
            f"{rng.choice(catalog.FIRST_NAMES)} {rng.choice(catalog.LAST_NAMES)}",
            iban_for(country, n),
            f"MULE{country}22",
            country,
        )

    def _account_takeover(self, t_ms: int) -> bool:
        rng = self.rng
        payer = self._payers[int(rng.random() * len(self._payers))]
        debtor = self.bank.accounts[payer.account_ids[0]]
        gap = rng.uniform(20_000, 300_000)
        squeeze = self.squeeze(t_ms, gap + 4_000)
        if not squeeze:
            return False
        gap *= squeeze
        attacker_country = rng.choice([c for c in _FRAUD_COUNTRIES if c != payer.home.country])
        device, ip = device_id(rng), ip_in(attacker_country, rng)
        mule = self._mule(rng.choice(["LT", "GB", "NL", attacker_country]))
        large = int(rng.uniform(3_000, 25_000) * geo.EUR_RATES[debtor.currency]) * 100
        sc = Scenario(
            FraudPattern.ACCOUNT_TAKEOVER,
            self.stream,
            payer.customer_id,
            debtor.account_id,
            None,
            f"contact details changed, new device from {attacker_country}, test transfer then "
            f"{large / 100:.2f} {debtor.currency} to a new beneficiary {gap / 1000:.0f}s later",
        )
        self.side.append(
            CustomerUpdate(
                payer.customer_id,
                (
                    ("email", f"{payer.first_name.lower()}.{rng.randrange(10**6)}@mailbox.example"),
                    ("phone", f"+234{rng.randrange(10**9, 10**10)}"),
                ),
                "CONTACT_CHANGE",
                t_ms,
            )
        )
        common = dict(
            debtor=debtor,
            creditor=mule,
            channel=rng.choice(["WEB", "MOBILE"]),
            device=device,
            ip=ip,
            ip_country=attacker_country,
            execution_date=dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC).date(),
        )
        small = rng.randint(100, 5_000)
        self._initiate(
            float(t_ms),
            rng.uniform(500, 2000) * squeeze,
            sc,
            0.0,
            payment_id=self.next_id("P"),
            payment_type="SEPA_INSTANT",
            amount_minor=small,
            remittance=None,
            **common,
        )
        self._initiate(
            t_ms + gap,
            rng.uniform(500, 2000) * squeeze,
            sc,
            0.0,
            payment_id=self.next_id("P"),
            payment_type=rng.choice(["SEPA_INSTANT", "SWIFT"]),
            amount_minor=large,
            remittance="Invoice",
            **common,
        )
        return True

    def _structuring(self, t_ms: int) -> bool:
        rng = self.rng
        n = rng.randint(3, 6)
        gaps = [rng.uniform(5_000, 90_000) for _ in range(n)]
        squeeze = self.squeeze(t_ms, sum(gaps) + 50_000)
        if not squeeze:
            return False
        gaps = [g * squeeze for g in gaps]
        payer = self._payers[int(rng.random() * len(self._payers))]
        debtor = self.bank.accounts[payer.account_ids[0]]
        beneficiaries = [
            self.bank.counterparties[int(rng.random() * len(self.bank.counterparties))] for _ in range(2)
        ]
        sc = Scenario(
            FraudPattern.STRUCTURING,
            self.stream,
            payer.customer_id,
            debtor.account_id,
            None,
            f"{n} transfers just under {STRUCTURING_THRESHOLD_MINOR // 100} {debtor.currency} "
            f"within {sum(gaps) / 60_000:.1f} min",
        )
        due = float(t_ms)
        for i, gap in enumerate(gaps):
            amount = STRUCTURING_THRESHOLD_MINOR - rng.randint(1, 90) * 1000 - rng.choice([0, 0, 50, 99])
            self._initiate(
                due,
                rng.uniform(5_000, 50_000) * squeeze,
                sc,
                0.0,
                payment_id=self.next_id("P"),
                payment_type=rng.choice(["SEPA_CREDIT", "WIRE"]),
                debtor=debtor,
                creditor=beneficiaries[i % 2],
                amount_minor=amount,
                channel=rng.choice(["WEB", "MOBILE", "BRANCH"]),
                remittance=None,
                device=payer.devices[0] if payer.devices else None,
                ip=payer.home_ip,
                ip_country=payer.home.country,
                execution_date=dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC).date(),
            )
            due += gap
        return True


# ---- trades and ticks ---------------------------------------------------------------------------


def _settlement_date(t_ms: int) -> dt.date:
    day = dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC).date()
    added = 0
    while added < 2:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    return day


class TradeStream(StreamGenerator):
    stream: ClassVar[Stream] = Stream.TRADES

    def __init__(self, bank: Bank, seed: int, market: Market) -> None:
        super().__init__(bank, seed, 0.0)
        self.market = market
        self._house = [p for p in bank.portfolios if p.customer_id is None]
        self._clients = [p for p in bank.portfolios if p.customer_id is not None]

    def background(self, t_ms: int) -> Trade:
        rng = self.rng
        house = rng.random() < 0.6 or not self._clients
        portfolio = (self._house if house else self._clients)[
            int(rng.random() * len(self._house if house else self._clients))
        ]
        index = int(rng.random() * len(self.market.instruments))
        inst = self.market.instruments[index]
        bid, ask = self.market.quote_e8(index, t_ms)
        side = "BUY" if rng.random() < 0.52 else "SELL"
        price = ask if side == "BUY" else bid
        lots = rng.randint(1, 20) if house else rng.randint(1, 3)
        quantity_e6 = inst.lot * lots * 1_000_000
        notional_e4 = quantity_e6 * price // 10_000_000_000
        if inst.asset_class == "BOND":
            notional_e4 //= 100  # bond prices are quoted in percent of nominal
        account = self.bank.accounts[portfolio.account_id]
        self._counter += 1
        trade = Trade(
            event_id=fast_uuid4(rng),
            trade_id=f"T{self.seed:x}-{self._counter:010d}",
            order_id=f"O{self.seed:x}-{self._counter // 3:010d}",
            portfolio=portfolio,
            instrument=inst,
            side=side,
            quantity_e6=quantity_e6,
            price_e8=price,
            notional_e4=notional_e4,
            venue=inst.venue,
            trader_id=portfolio.trader_id,
            execution_time_us=t_ms * 1000 + int(rng.random() * 1000),
            settlement_date=_settlement_date(t_ms),
        )
        cash = geo.convert_minor(notional_e4 // 100, inst.currency, account.currency)
        self.side.append(
            BalanceMovement(
                account.account_id, -cash if side == "BUY" else cash, trade.event_id, "TRADE", t_ms
            )
        )
        return trade


class TickStream(StreamGenerator):
    stream: ClassVar[Stream] = Stream.TICKS

    def __init__(self, bank: Bank, seed: int, market: Market) -> None:
        super().__init__(bank, seed, 0.0)
        self.market = market
        n = len(market.instruments)
        # Liquid names tick more often: Zipf-like weights.
        self._cum = list(itertools.accumulate([1.0 / (k + 1) ** 0.8 for k in range(n)]))
        self._sequence = [0] * n
        self._volume = [0] * n

    def background(self, t_ms: int) -> PriceTick:
        rng = self.rng
        index = bisect.bisect_right(self._cum, rng.random() * self._cum[-1])
        index = min(index, len(self._sequence) - 1)
        inst = self.market.instruments[index]
        bid, ask = self.market.quote_e8(index, t_ms)
        traded = rng.random() < 0.3
        if traded:
            self._volume[index] += inst.lot * rng.randint(1, 10)
        self._sequence[index] += 1
        return PriceTick(
            instrument=inst,
            venue=inst.venue,
            bid_e8=bid,
            ask_e8=ask,
            last_e8=(bid if rng.random() < 0.5 else ask) if traded or self._volume[index] else None,
            bid_size=inst.lot * rng.randint(1, 50),
            ask_size=inst.lot * rng.randint(1, 50),
            volume=self._volume[index],
            sequence=self._sequence[index],
            tick_time_us=t_ms * 1000 + int(rng.random() * 1000),
        )
