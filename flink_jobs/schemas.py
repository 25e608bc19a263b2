"""Register the fraud job's subjects for the topic names configured in ``settings.fraud``.

The job encodes with the latest schema of ``<topic>-key``/``<topic>-value`` (TopicNameStrategy);
the catalog registers the default topic names, and this covers renamed topics (tests, a second
deployment) with the same schema files. Registering an identical schema is idempotent.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from flink_jobs.avro import RegistryConfig
from riverbank.errors import ServiceUnavailableError, TerminalError
from riverbank.registry import catalog
from riverbank.settings import Settings


def fraud_subjects(settings: Settings) -> dict[str, str]:
    """Subject -> schema text for every topic the fraud job reads or writes."""
    fraud = settings.fraud
    renamed = {
        "bank.card.transactions": fraud.card_topic,
        "bank.payments": fraud.payment_topic,
        "fraud.rules": fraud.rules_topic,
        "transactions.scored": fraud.scored_topic,
        "fraud.alerts": fraud.alerts_topic,
    }
    out = {}
    for entry in catalog.load():
        if entry.topic in renamed:
            suffix = entry.subject.removeprefix(entry.topic)
            out[renamed[entry.topic] + suffix] = entry.text
    return out


def ensure_fraud_subjects(settings: Settings) -> list[int]:
    """Register (idempotently) the fraud job's subjects; returns their schema ids."""
    config = RegistryConfig.from_settings(settings.schema_registry)
    ids = []
    try:
        with httpx.Client(
            base_url=config.url, auth=config.basic_auth, verify=config.ca_location or True, timeout=15
        ) as client:
            for subject, text in fraud_subjects(settings).items():
                reply = client.post(
                    f"/subjects/{quote(subject, safe='')}/versions",
                    json={"schema": text},
                    headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
                )
                if reply.status_code >= 400:
                    raise TerminalError(
                        f"schema registry refused {subject}: HTTP {reply.status_code} {reply.text[:300]}"
                    )
                ids.append(int(reply.json()["id"]))
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"schema registry at {config.url}: {exc}") from None
    return ids
