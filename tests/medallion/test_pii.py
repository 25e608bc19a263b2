"""Keyed PII protection: deterministic, key-dependent, nothing raw left (no services)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from iceberg.silver.pii import PiiProtector, looks_like_pan, pii_key
from riverbank.errors import ConfigError
from riverbank.settings import load_settings

KEY_A = b"a" * 32
KEY_B = b"b" * 32


def test_same_input_same_token_and_a_different_key_a_different_token() -> None:
    a, a2, b = PiiProtector(KEY_A), PiiProtector(KEY_A), PiiProtector(KEY_B)
    assert a.tokenize_pan("4111111111111111") == a2.tokenize_pan("4111-1111-1111-1111")
    assert a.tokenize_pan("4111111111111111") != b.tokenize_pan("4111111111111111")
    assert a.hash_email(" Ada@Example.org") == a2.hash_email("ada@example.org")
    assert a.hash_email("ada@example.org") != b.hash_email("ada@example.org")
    assert a.hash_phone("+44 20 7946 0000") == a.hash_phone("+442079460000")
    assert a.hash_phone("+442079460000") != b.hash_phone("+442079460000")
    # Domains apart: the same text hashed as an e-mail and as a phone differs.
    assert a.hash_email("12345") != a.hash_phone("12345")


def test_tokens_keep_the_last_four_digits_only() -> None:
    token = PiiProtector(KEY_A).tokenize_pan("5500 0000 0000 0004")
    assert token.endswith("_0004")
    assert "5500000000000004" not in token and "5500" not in token[:-5]


def test_pans_in_free_text_are_replaced_and_other_numbers_kept() -> None:
    pii = PiiProtector(KEY_A)
    text = "refund card 4111 1111 1111 1111 ref 1234567890123 (not luhn) order 42"
    scrubbed = pii.scrub_text(text)
    assert scrubbed is not None
    assert "4111 1111 1111 1111" not in scrubbed and pii.tokenize_pan("4111111111111111") in scrubbed
    assert "1234567890123" in scrubbed and "order 42" in scrubbed
    assert looks_like_pan("4111111111111111") and not looks_like_pan("tok_4111111111111111")


def test_local_profile_generates_a_private_key_once(tmp_path: Path) -> None:
    settings = load_settings()
    key = pii_key(settings)
    path = settings.medallion.pii_key_file
    assert path is not None and path.is_file() and len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pii_key(load_settings()) == key


def test_explicit_key_wins_and_aws_without_a_key_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERBANK_MEDALLION__PII_KEY", "k" * 32)
    assert pii_key(load_settings()) == b"k" * 32
    monkeypatch.delenv("RIVERBANK_MEDALLION__PII_KEY")
    aws = load_settings(
        profile="aws",
        kafka={"bootstrap_servers": "b:9092"},
        schema_registry={"url": "http://r:8081"},
        lake={"warehouse": "s3://lake/wh"},
        aws={"region": "eu-west-1"},
    )
    with pytest.raises(ConfigError, match=r"medallion\.pii_key"):
        pii_key(aws)
