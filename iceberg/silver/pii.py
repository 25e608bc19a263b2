"""PII protection for silver: card numbers tokenized, e-mails and phone numbers hashed, keyed.

Tokens and hashes are HMAC-SHA256 under one secret key (``medallion.pii_key``), so the same
input always gives the same value (joins and counts still work) while nobody without the key
can rebuild the input from a dictionary of likely values. A PAN token keeps the last four
digits, which card operations need and which PCI DSS allows to show.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from riverbank.errors import ConfigError
from riverbank.settings import Settings

# 13 to 19 digits, optionally grouped by single spaces or dashes, not inside a longer number.
_PAN_IN_TEXT = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
_PHONE_KEEP = re.compile(r"[^\d+]")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_pan(value: str) -> bool:
    """True for 13-19 digits (spaces/dashes allowed) passing the Luhn check."""
    digits = re.sub(r"[ -]", "", value)
    return digits.isdigit() and 13 <= len(digits) <= 19 and luhn_valid(digits)


class PiiProtector:
    """Keyed tokenization and hashing; one instance per key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the PII key must be at least 16 bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def _mac(self, domain: str, value: str) -> str:
        # The domain keeps an e-mail and a phone number with the same text from sharing a hash.
        return hmac.new(self._key, f"{domain}:{value}".encode(), hashlib.sha256).hexdigest()

    def tokenize_pan(self, pan: str) -> str:
        digits = re.sub(r"[ -]", "", pan)
        cached = self._cache.get(digits)
        if cached is None:
            cached = f"pan_{self._mac('pan', digits)[:24]}_{digits[-4:]}"
            self._cache[digits] = cached
        return cached

    def protect_card_id(self, value: str | None) -> str | None:
        """A card identifier that is a PAN becomes its token; tokens already issued pass through."""
        if value is None or not looks_like_pan(value):
            return value
        return self.tokenize_pan(value)

    def scrub_text(self, text: str | None) -> str | None:
        """Free text with every PAN-looking number replaced by its token."""
        if text is None or not any(ch.isdigit() for ch in text):
            return text
        return _PAN_IN_TEXT.sub(
            lambda m: self.tokenize_pan(m.group()) if looks_like_pan(m.group()) else m.group(), text
        )

    def scrub_map(self, values: Mapping[str, str] | None) -> dict[str, str]:
        return {k: self.scrub_text(v) or "" for k, v in (values or {}).items()}

    def hash_email(self, email: str | None) -> str | None:
        if email is None or not email.strip():
            return None
        return self._mac("email", email.strip().lower())

    def hash_phone(self, phone: str | None) -> str | None:
        if phone is None:
            return None
        normalized = _PHONE_KEEP.sub("", phone)
        return self._mac("phone", normalized) if normalized else None


def pii_key(settings: Settings) -> bytes:
    """The key from ``medallion.pii_key``, else its file; the local profile generates the file once."""
    config = settings.medallion
    if config.pii_key is not None:
        return config.pii_key.get_secret_value().encode()
    path = config.pii_key_file
    if path is not None and path.is_file():
        return path.read_text().strip().encode()
    if settings.profile == "local" and path is not None:
        return _generate_key_file(path).encode()
    raise ConfigError(
        "medallion.pii_key",
        f"is required with profile {settings.profile!r} (or medallion.pii_key_file naming a file)",
        "not set; looked in RIVERBANK_MEDALLION__PII_KEY, RIVERBANK_MEDALLION__PII_KEY_FILE",
    )


def _generate_key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    # O_EXCL: two processes starting together keep whichever key was written first.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def protector(settings: Settings) -> PiiProtector:
    return PiiProtector(pii_key(settings))
