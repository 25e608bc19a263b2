"""The synthetic bank in motion: streams merged on one simulated timeline.

``Simulation.step()`` returns the next event in event-time order across the selected streams;
the side records it caused (balance movements, changes to customers and cards, fraud labels) are
collected in ``Simulation.side`` for the caller to route and clear. Arrivals are a Poisson process
per stream at the configured rate; ``time_scale`` simulated seconds pass per second of rate.

Pure: no clock, no I/O. The runner paces it against the wall clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import log as _log

from producers import geo
from producers.bank import Bank, BankSize, build_bank
from producers.market import Market
from producers.model import CardUpdate, CustomerUpdate, Event, Stream, event_time_ms_of
from producers.streams import CardStream, PaymentStream, Side, StreamGenerator, TickStream, TradeStream

#: How ``--stream all`` splits one rate between the streams.
ALL_SHARES: dict[Stream, float] = {
    Stream.TRANSACTIONS: 0.6,
    Stream.PAYMENTS: 0.1,
    Stream.TRADES: 0.05,
    Stream.TICKS: 0.25,
}


def split_rate(streams: list[Stream], rate: float) -> dict[Stream, float]:
    """Per-stream rates for a total ``rate``: one stream gets it all, several share it."""
    if len(streams) == 1:
        return {streams[0]: rate}
    total = sum(ALL_SHARES[s] for s in streams)
    return {s: rate * ALL_SHARES[s] / total for s in streams}


@dataclass(frozen=True)
class SimulationConfig:
    rates: dict[Stream, float]
    start_ms: int
    #: Run length in seconds at the target rate; None runs until stopped.
    duration_s: float | None = None
    seed: int = 1
    bank_seed: int = 1
    bank_size: BankSize = field(default_factory=BankSize)
    #: Probability that a slot starts a fraud scenario (card and payment streams).
    fraud_rate: float = 0.002
    #: Probability per event of a change to the bank's tables (contact, address, card block).
    change_rate: float = 0.0005
    #: Simulated seconds per second of the run (1: event time follows the wall clock).
    time_scale: float = 1.0

    @property
    def end_ms(self) -> float:
        if self.duration_s is None:
            return float("inf")
        return self.start_ms + self.duration_s * 1000 * self.time_scale


class Simulation:
    def __init__(self, config: SimulationConfig, bank: Bank | None = None) -> None:
        self.config = config
        self.bank = bank or build_bank(config.bank_seed, config.bank_size)
        self.side: list[Side] = []
        self._rng = random.Random(f"riverbank-sim-{config.seed}")
        market = Market(self.bank.instruments, config.seed, config.start_ms)
        self._generators: list[StreamGenerator] = []
        self._next_ms: list[float] = []
        self._mean_gap_ms: list[float] = []
        self._arrivals: list[random.Random] = []
        for stream, rate in config.rates.items():
            if rate <= 0:
                continue
            gen: StreamGenerator
            if stream is Stream.TRANSACTIONS:
                gen = CardStream(self.bank, config.seed, config.fraud_rate)
            elif stream is Stream.PAYMENTS:
                gen = PaymentStream(self.bank, config.seed, config.fraud_rate)
            elif stream is Stream.TRADES:
                gen = TradeStream(self.bank, config.seed, market)
            else:
                gen = TickStream(self.bank, config.seed, market)
            gen.side = self.side
            gen.end_ms = config.end_ms
            arrivals = random.Random(f"riverbank-arrivals-{stream.value}-{config.seed}")
            mean_gap = 1000.0 * config.time_scale / rate
            self._generators.append(gen)
            self._arrivals.append(arrivals)
            self._mean_gap_ms.append(mean_gap)
            self._next_ms.append(config.start_ms + arrivals.expovariate(1.0) * mean_gap)
        self._tail: Iterator[Event] | None = None
        self._end_ms = config.end_ms
        self._change_rate = config.change_rate
        self._change_roll = self._rng.random
        self.generated = 0

    @property
    def streams(self) -> list[Stream]:
        return [g.stream for g in self._generators]

    def step(self) -> Event | None:
        """The next event, or None when the run is over."""
        if self._tail is None:
            nexts = self._next_ms
            i = 0
            if len(nexts) > 1:
                i = min(range(len(nexts)), key=nexts.__getitem__)
            t = nexts[i]
            if t < self._end_ms:
                # expovariate(1.0), inlined: -log(1 - random()) / 1.0
                nexts[i] = t + -_log(1.0 - self._arrivals[i].random()) * self._mean_gap_ms[i]
                event = self._generators[i].slot(int(t))
                if self._change_rate and self._change_roll() < self._change_rate:
                    self._change(int(t))
                self.generated += 1
                return event
            tail = [e for g in self._generators for e in g.finish()]
            tail.sort(key=event_time_ms_of)
            self._tail = iter(tail)
        last = next(self._tail, None)
        if last is not None:
            self.generated += 1
        return last

    def events(self) -> Iterator[Event]:
        """All events of a bounded run (tests and benchmarks); side records accumulate in ``side``."""
        while (event := self.step()) is not None:
            yield event

    def _change(self, t_ms: int) -> None:
        rng = self._rng
        customers = self.bank.customers
        customer = customers[self.bank.id_base + 1 + int(rng.random() * (len(customers) - 1))]
        roll = rng.random()
        if roll < 0.4:
            name = f"{customer.first_name}.{customer.last_name.replace(' ', '')}"
            email = f"{name}.{rng.randrange(1000)}@example.com"
            customer.email = email.lower()
            self.side.append(
                CustomerUpdate(customer.customer_id, (("email", customer.email),), "CONTACT_CHANGE", t_ms)
            )
        elif roll < 0.7:
            customer.phone = customer.phone[:-4] + f"{rng.randrange(10000):04d}"
            self.side.append(
                CustomerUpdate(customer.customer_id, (("phone", customer.phone),), "CONTACT_CHANGE", t_ms)
            )
        elif roll < 0.8:
            # Moving house; sometimes to another country (the row keeps the country of residence).
            homes = list(geo.HOME_CITY_WEIGHTS)
            customer.home = geo.BY_NAME[homes[int(rng.random() * len(homes))]]
            self.side.append(
                CustomerUpdate(
                    customer.customer_id, (("country", customer.home.country),), "ADDRESS_CHANGE", t_ms
                )
            )
        elif roll < 0.85:
            customer.risk_rating = rng.choice(["LOW", "MEDIUM", "HIGH"])
            self.side.append(
                CustomerUpdate(
                    customer.customer_id, (("risk_rating", customer.risk_rating),), "RISK_REVIEW", t_ms
                )
            )
        elif customer.card_ids:
            card = self.bank.cards[customer.card_ids[int(rng.random() * len(customer.card_ids))]]
            if card.status == "ACTIVE":
                card.status = "BLOCKED"
                self.side.append(
                    CardUpdate(
                        card.card_id, "BLOCKED", rng.choice(["LOST", "STOLEN", "CUSTOMER_REQUEST"]), t_ms
                    )
                )
