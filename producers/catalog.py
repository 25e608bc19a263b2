"""Reference data of the synthetic bank: merchant categories, daily activity profiles, names.

Amounts follow a log-normal distribution per category (``median_eur`` and ``sigma``), which is the
usual shape of card spend: many small purchases, a long tail of large ones.
"""

from __future__ import annotations

from dataclasses import dataclass

# Relative activity per local hour of day, 0..23.
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    # Shops: a late morning and an early evening peak, quiet at night.
    "day": (
        0.05,
        0.03,
        0.02,
        0.02,
        0.03,
        0.08,
        0.25,
        0.55,
        0.8,
        1.0,
        1.1,
        1.2,
        1.3,
        1.2,
        1.1,
        1.1,
        1.2,
        1.4,
        1.5,
        1.3,
        0.9,
        0.5,
        0.25,
        0.1,
    ),
    # Restaurants and food: lunch and dinner.
    "meals": (
        0.05,
        0.03,
        0.02,
        0.02,
        0.02,
        0.05,
        0.2,
        0.5,
        0.6,
        0.4,
        0.5,
        1.3,
        2.0,
        1.6,
        0.6,
        0.4,
        0.4,
        0.7,
        1.4,
        2.0,
        1.8,
        1.0,
        0.4,
        0.15,
    ),
    # Bars and nightlife.
    "night": (
        0.8,
        0.6,
        0.4,
        0.15,
        0.05,
        0.02,
        0.02,
        0.02,
        0.02,
        0.03,
        0.05,
        0.1,
        0.2,
        0.2,
        0.2,
        0.2,
        0.3,
        0.6,
        1.0,
        1.4,
        1.7,
        1.8,
        1.6,
        1.2,
    ),
    # Transit: commuting peaks.
    "commute": (
        0.05,
        0.02,
        0.01,
        0.01,
        0.05,
        0.3,
        1.2,
        2.2,
        2.0,
        0.9,
        0.6,
        0.6,
        0.7,
        0.6,
        0.6,
        0.8,
        1.3,
        2.1,
        2.0,
        1.0,
        0.6,
        0.4,
        0.3,
        0.15,
    ),
    # Online: spread through the day, evening heavy.
    "online": (
        0.4,
        0.25,
        0.15,
        0.1,
        0.1,
        0.15,
        0.3,
        0.5,
        0.7,
        0.8,
        0.9,
        1.0,
        1.1,
        1.0,
        1.0,
        1.0,
        1.0,
        1.1,
        1.3,
        1.6,
        1.8,
        1.7,
        1.3,
        0.8,
    ),
}


def overall_activity() -> tuple[float, ...]:
    """How active a customer is per local hour, all categories together."""
    profiles = list(HOUR_PROFILES.values())
    return tuple(sum(p[h] for p in profiles) / len(profiles) for h in range(24))


@dataclass(frozen=True, slots=True)
class Category:
    mcc: str
    label: str
    median_eur: float
    sigma: float
    profile: str
    #: Share of transactions made online (ECOM); the rest are card present.
    online_share: float
    #: Relative frequency in ordinary spending (0 for categories only fraud uses).
    weight: float
    merchant_names: tuple[str, ...]
    #: Rare in normal spending and typical of cash-out fraud.
    high_risk: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category(
        "5411",
        "grocery",
        32.0,
        0.7,
        "day",
        0.08,
        22,
        ("FreshMart", "Corner Grocer", "Daily Basket", "GreenLeaf Market"),
    ),
    Category(
        "5812",
        "restaurants",
        28.0,
        0.6,
        "meals",
        0.02,
        10,
        ("Trattoria Sole", "The Oak Room", "Bistro Lumiere", "Casa Mar"),
    ),
    Category(
        "5814",
        "fast food",
        11.0,
        0.45,
        "meals",
        0.15,
        10,
        ("QuickBite", "Burger Point", "Noodle Box", "Pita Place"),
    ),
    Category("5541", "fuel", 55.0, 0.35, "day", 0.0, 5, ("Petrol Plus", "FuelStop", "Autogas")),
    Category("5912", "pharmacy", 17.0, 0.6, "day", 0.1, 4, ("CarePharm", "MediPlus", "Apotheca")),
    Category(
        "5311", "department stores", 65.0, 0.9, "day", 0.35, 4, ("Grand Magasin", "Bellmont", "Halden & Co")
    ),
    Category("5651", "clothing", 58.0, 0.8, "day", 0.45, 5, ("Threadline", "Moda Viva", "North Coat")),
    Category(
        "5732", "electronics", 160.0, 1.0, "day", 0.55, 2, ("CircuitHouse", "Pixel Depot", "Volt Store")
    ),
    Category("4121", "taxis", 17.0, 0.6, "night", 0.6, 6, ("CityCab", "RideNow", "Blue Taxi")),
    Category("4111", "transit", 3.5, 0.5, "commute", 0.2, 8, ("Metro Transit", "Rail Link", "Urban Bus")),
    Category("4511", "airlines", 310.0, 0.7, "day", 0.9, 0.6, ("SkyWays", "EuroJet", "Atlas Air")),
    Category("7011", "hotels", 170.0, 0.6, "day", 0.7, 0.8, ("Harbor Hotel", "Inn Central", "Palace Suites")),
    Category("5815", "digital media", 9.0, 0.7, "online", 1.0, 4, ("StreamFlix", "TuneCloud", "eBookery")),
    Category("5813", "bars", 24.0, 0.6, "night", 0.0, 4, ("The Anchor", "Bar Nuevo", "Night Owl")),
    Category("6011", "cash withdrawal", 100.0, 0.6, "day", 0.0, 3, ("ATM",)),
    Category("5999", "retail misc", 24.0, 0.9, "day", 0.5, 5, ("Gift Corner", "Hobby Hub", "Paper & Co")),
    Category(
        "7995", "gambling", 150.0, 0.9, "night", 1.0, 0, ("LuckyStar Casino", "BetRoyal"), high_risk=True
    ),
    Category(
        "6051",
        "quasi-cash / crypto",
        800.0,
        0.6,
        "online",
        1.0,
        0,
        ("CoinVault", "CryptoNow"),
        high_risk=True,
    ),
    Category("5944", "jewellery", 1200.0, 0.5, "day", 0.6, 0, ("Gold & Gem", "Diamond Row"), high_risk=True),
    Category(
        "4829", "money transfer", 600.0, 0.5, "online", 1.0, 0, ("SendFast", "WireQuick"), high_risk=True
    ),
)

ATM_MCC = "6011"
#: Small merchants card testers like: digital goods, donations, app stores.
CARD_TESTING_MCCS = ("5815", "5999")

FIRST_NAMES = (
    "Olivia",
    "Noah",
    "Emma",
    "Liam",
    "Sofia",
    "Lucas",
    "Mia",
    "Leon",
    "Chloe",
    "Hugo",
    "Anna",
    "Mateo",
    "Lea",
    "Luca",
    "Ines",
    "Finn",
    "Julia",
    "Elias",
    "Sara",
    "Jonas",
    "Amelia",
    "Oscar",
    "Giulia",
    "Pablo",
    "Maja",
    "Tomas",
    "Aoife",
    "Sean",
    "Beatriz",
    "Joao",
)
LAST_NAMES = (
    "Smith",
    "Martin",
    "Muller",
    "Garcia",
    "Rossi",
    "de Jong",
    "Murphy",
    "Silva",
    "Bernard",
    "Schmidt",
    "Lopez",
    "Bianchi",
    "Jansen",
    "Kelly",
    "Santos",
    "Dubois",
    "Weber",
    "Fernandez",
    "Romano",
    "Visser",
    "Walsh",
    "Costa",
    "Moreau",
    "Wagner",
    "Ruiz",
    "Ricci",
    "Bakker",
    "Brown",
)
COMPANY_WORDS = (
    "Northwind",
    "Blue Harbor",
    "Keystone",
    "Meridian",
    "Summit",
    "Lakeside",
    "Crescent",
    "Pioneer",
    "Granite",
    "Silverline",
    "Redwood",
    "Atlas",
    "Beacon",
    "Harbor",
    "Orion",
)
COMPANY_SUFFIXES = ("Ltd", "GmbH", "SARL", "BV", "SpA", "SL", "Holdings", "Services")
