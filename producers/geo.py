"""Places and money for the synthetic bank: cities with coordinates and time zones, currencies.

Plain data and arithmetic; no I/O. Time zones are standard UTC offsets (no daylight saving): the
generator only needs a believable local hour of day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    lat: float
    lon: float
    utc_offset: int  # hours
    currency: str


#: Home cities of the bank's customers (a European bank) and destinations they travel to.
CITIES: tuple[City, ...] = (
    City("London", "GB", 51.507, -0.128, 0, "GBP"),
    City("Manchester", "GB", 53.480, -2.243, 0, "GBP"),
    City("Edinburgh", "GB", 55.953, -3.188, 0, "GBP"),
    City("Dublin", "IE", 53.350, -6.260, 0, "EUR"),
    City("Lisbon", "PT", 38.722, -9.139, 0, "EUR"),
    City("Paris", "FR", 48.857, 2.352, 1, "EUR"),
    City("Lyon", "FR", 45.764, 4.836, 1, "EUR"),
    City("Berlin", "DE", 52.520, 13.405, 1, "EUR"),
    City("Munich", "DE", 48.135, 11.582, 1, "EUR"),
    City("Frankfurt", "DE", 50.110, 8.682, 1, "EUR"),
    City("Madrid", "ES", 40.417, -3.704, 1, "EUR"),
    City("Barcelona", "ES", 41.385, 2.173, 1, "EUR"),
    City("Rome", "IT", 41.903, 12.496, 1, "EUR"),
    City("Milan", "IT", 45.464, 9.190, 1, "EUR"),
    City("Amsterdam", "NL", 52.368, 4.904, 1, "EUR"),
    City("Zurich", "CH", 47.377, 8.541, 1, "CHF"),
    City("Warsaw", "PL", 52.230, 21.012, 1, "PLN"),
    City("Stockholm", "SE", 59.329, 18.069, 1, "SEK"),
    City("Istanbul", "TR", 41.008, 28.978, 3, "TRY"),
    City("Dubai", "AE", 25.205, 55.271, 4, "AED"),
    City("Lagos", "NG", 6.524, 3.379, 1, "NGN"),
    City("Johannesburg", "ZA", -26.204, 28.047, 2, "ZAR"),
    City("Mumbai", "IN", 19.076, 72.878, 5, "INR"),
    City("Bangkok", "TH", 13.756, 100.502, 7, "THB"),
    City("Singapore", "SG", 1.352, 103.820, 8, "SGD"),
    City("Hong Kong", "HK", 22.320, 114.169, 8, "HKD"),
    City("Tokyo", "JP", 35.676, 139.650, 9, "JPY"),
    City("Sydney", "AU", -33.869, 151.209, 10, "AUD"),
    City("New York", "US", 40.713, -74.006, -5, "USD"),
    City("Chicago", "US", 41.878, -87.630, -6, "USD"),
    City("Miami", "US", 25.762, -80.192, -5, "USD"),
    City("San Francisco", "US", 37.775, -122.419, -8, "USD"),
    City("Toronto", "CA", 43.653, -79.383, -5, "CAD"),
    City("Mexico City", "MX", 19.433, -99.133, -6, "MXN"),
    City("Sao Paulo", "BR", -23.551, -46.633, -3, "BRL"),
)

#: Where customers live, with weights (the bank is European).
HOME_CITY_WEIGHTS: dict[str, float] = {
    "London": 14,
    "Manchester": 4,
    "Edinburgh": 2,
    "Dublin": 4,
    "Lisbon": 3,
    "Paris": 12,
    "Lyon": 3,
    "Berlin": 8,
    "Munich": 4,
    "Frankfurt": 3,
    "Madrid": 7,
    "Barcelona": 5,
    "Rome": 5,
    "Milan": 5,
    "Amsterdam": 5,
}

#: Units of each currency per 1 EUR (fixed: the synthetic bank's own rate sheet).
EUR_RATES: dict[str, float] = {
    "EUR": 1.0,
    "GBP": 0.85,
    "USD": 1.08,
    "CHF": 0.95,
    "PLN": 4.30,
    "SEK": 11.40,
    "TRY": 35.0,
    "AED": 3.97,
    "NGN": 1650.0,
    "ZAR": 20.0,
    "INR": 90.0,
    "THB": 38.0,
    "SGD": 1.45,
    "HKD": 8.45,
    "JPY": 162.0,
    "AUD": 1.65,
    "CAD": 1.48,
    "MXN": 18.5,
    "BRL": 5.9,
}

BY_NAME: dict[str, City] = {c.name: c for c in CITIES}


def convert_minor(amount_minor: int, from_currency: str, to_currency: str) -> int:
    """Convert an amount in minor units (cents) between currencies at the fixed rate sheet."""
    if from_currency == to_currency:
        return amount_minor
    rate = EUR_RATES[to_currency] / EUR_RATES[from_currency]
    return round(amount_minor * rate)


def distance_km(a: City, b: City) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


#: Faster than any airliner: two card-present uses further apart than this speed are impossible.
MAX_TRAVEL_KMH = 1000.0
