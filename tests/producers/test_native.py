"""The compiled producers (producers/native.py): used only while fresh, and byte for byte the same
events, keys, values, labels and bank changes as the interpreted modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from producers import native

ROOT = Path(__file__).resolve().parents[2]

# Every stream with fraud and bank changes, through the wire mapping and the encoders the
# publisher uses (card transactions through both the dict-free and the record encoder).
_DIGEST_SCRIPT = """
import hashlib, json
from producers import native
from producers.avro_encoder import compile_encoder, wire_prefix
from producers.bank import BankSize
from producers.model import Stream
from producers.publisher import EVENT_ENCODERS, schema_texts
from producers.simulation import Simulation, SimulationConfig, split_rate
from producers.wire import TOPICS, WIRE, fraud_label_record

texts = schema_texts()
values = {t: compile_encoder(v, wire_prefix(7)) for t, (_, v) in texts.items()}
keys = {t: compile_encoder(k, wire_prefix(8)) for t, (k, _) in texts.items()}
fast = {t: make(texts[t][1], wire_prefix(7), values[t]) for t, make in EVENT_ENCODERS.items()}
sim = Simulation(SimulationConfig(
    rates=split_rate(list(Stream), 3000), start_ms=1_767_268_800_000, duration_s=20, seed=5,
    bank_size=BankSize(customers=400, counterparties=80), fraud_rate=0.01, change_rate=0.01,
))
digest, events, fast_equal = hashlib.sha256(), 0, 0
for event in sim.events():
    stream, key_of, record_of = WIRE[type(event)]
    topic = TOPICS[stream]
    value = values[topic](record_of(event))
    digest.update(keys[topic](key_of(event)) + value)
    if topic in fast:
        fast_equal += fast[topic](event) == value
    events += 1
for item in sim.side:
    text = json.dumps(fraud_label_record(item)) if hasattr(item, "label_id") else repr(item)
    digest.update(text.encode())
print(json.dumps({"active": native.active, "events": events, "side": len(sim.side),
                  "fast_equal": fast_equal, "sha256": digest.hexdigest()}))
"""


def _digest(native_on: bool) -> dict[str, object]:
    env = {**os.environ, native.ENV: "1" if native_on else "0"}
    out = subprocess.run(
        [sys.executable, "-c", _DIGEST_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not native.is_fresh(), reason="no fresh native build: run `make setup`")
def test_compiled_and_interpreted_producers_give_the_same_bytes() -> None:
    compiled, interpreted = _digest(True), _digest(False)
    assert compiled["active"] is True and interpreted["active"] is False
    assert isinstance(compiled["events"], int) and compiled["events"] > 50_000
    assert compiled["fast_equal"] == interpreted["fast_equal"] > 30_000
    assert {k: v for k, v in compiled.items() if k != "active"} == {
        k: v for k, v in interpreted.items() if k != "active"
    }


def test_a_build_is_used_only_while_it_matches_this_interpreter_and_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(native, "active", native.active)
    manifest = native.expected_manifest()

    def write(**changes: object) -> None:
        (tmp_path / native.MANIFEST).write_text(json.dumps({**manifest, **changes}))

    assert not native.is_fresh(tmp_path)  # no build at all
    write(sources={**manifest["sources"], "streams": "0" * 64})  # type: ignore[dict-item]
    assert not native.is_fresh(tmp_path)
    write(abi=".cpython-312-x86_64-linux-gnu.so")
    assert not native.is_fresh(tmp_path)
    write()
    assert native.is_fresh(tmp_path)

    package_path: list[str] = []
    monkeypatch.setenv(native.ENV, "0")
    assert not native.activate(package_path, tmp_path) and package_path == []
    monkeypatch.delenv(native.ENV)
    assert native.activate(package_path, tmp_path)
    assert package_path == [str(tmp_path / "producers")] and str(tmp_path) not in sys.path
