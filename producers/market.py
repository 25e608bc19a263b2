"""Market prices for the synthetic bank: a geometric random walk per instrument, advanced lazily.

Each instrument has its own random generator, so prices depend only on the seed and on the
times they are asked for.
"""

from __future__ import annotations

import math
import random

from producers.model import Instrument

# Annual volatility and half spread (in basis points) per asset class.
_VOL = {"EQUITY": 0.35, "BOND": 0.06, "FUND": 0.2, "FX": 0.1, "DERIVATIVE": 0.6, "OTHER": 0.3}
_HALF_SPREAD_BP = {"EQUITY": 4.0, "BOND": 8.0, "FUND": 15.0, "FX": 0.4, "DERIVATIVE": 10.0, "OTHER": 10.0}
# Price increment in 1e-8 units.
_TICK_E8 = {
    "EQUITY": 1_000_000,
    "BOND": 100_000,
    "FUND": 1_000_000,
    "FX": 1_000,
    "DERIVATIVE": 1_000_000,
    "OTHER": 1_000_000,
}
_SECONDS_PER_YEAR = 365.25 * 86400


class Market:
    def __init__(self, instruments: list[Instrument], seed: int, start_ms: int) -> None:
        self.instruments = instruments
        self._rngs = [random.Random(f"riverbank-market-{seed}-{i.instrument_id}") for i in instruments]
        self._mid = [float(i.initial_price_e8) for i in instruments]
        self._at_ms = [start_ms] * len(instruments)
        self._sigma_per_sqrt_s = [_VOL[i.asset_class] / math.sqrt(_SECONDS_PER_YEAR) for i in instruments]

    def mid_e8(self, index: int, t_ms: int) -> int:
        """Mid price of instrument ``index`` at ``t_ms`` (never moves backwards in time)."""
        elapsed = t_ms - self._at_ms[index]
        if elapsed > 0:
            shock = (
                self._rngs[index].gauss(0.0, 1.0) * self._sigma_per_sqrt_s[index] * math.sqrt(elapsed / 1000)
            )
            self._mid[index] *= math.exp(shock)
            self._at_ms[index] = t_ms
        return self._round(index, self._mid[index])

    def quote_e8(self, index: int, t_ms: int) -> tuple[int, int]:
        """(bid, ask) around the mid at ``t_ms``."""
        mid = self.mid_e8(index, t_ms)
        inst = self.instruments[index]
        half = max(_TICK_E8[inst.asset_class], int(mid * _HALF_SPREAD_BP[inst.asset_class] / 10_000))
        return self._round(index, mid - half), self._round(index, mid + half)

    def _round(self, index: int, price: float) -> int:
        tick = _TICK_E8[self.instruments[index].asset_class]
        return max(tick, round(price / tick) * tick)
