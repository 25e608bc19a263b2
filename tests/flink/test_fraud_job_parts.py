"""The fraud job's parts that need no cluster: output records against the schemas, rule files,
the Confluent wire format, and the jobs CLI's errors when Flink does not answer."""

from __future__ import annotations

import io
import json
import struct
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
from typer.testing import CliRunner

from bench.fraud_traffic import OfflineScorer, expected_alerts, generate
from flink_jobs.avro import WireFormatError, schema_id_of
from flink_jobs.rules_topic import DEFAULT_RULES_FILE, RuleFileError, load_rule_file
from flink_jobs.runner import submit_command
from fraud.job import initial_rules
from fraud.rules import DEFAULT_RULES, RuleError, RuleSet
from riverbank.cli import _register_subcommands, app
from riverbank.registry.catalog import DEFAULT_SCHEMAS_DIR
from riverbank.settings import load_settings
from tests.stack_harness import free_port

T0 = 1_790_000_000_000


def schema(name: str) -> object:
    return fastavro.parse_schema(json.loads((DEFAULT_SCHEMAS_DIR / "fraud" / name).read_text()))


def round_trip(parsed: object, record: dict[str, object]) -> dict[str, object]:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    out.seek(0)
    result: dict[str, object] = fastavro.schemaless_reader(out, parsed, None)
    return result


def test_outputs_of_a_seeded_stream_fit_their_schemas() -> None:
    batch = generate(5, 1500, T0)
    outputs = OfflineScorer(0.5).run(batch.events, initial_rules())
    alerts = [o.alert for o in outputs if o.alert is not None]
    assert len(outputs) == len(batch.events) and len(alerts) >= 5
    scored_schema, alert_schema = schema("scored_transaction.avsc"), schema("fraud_alert.avsc")
    for o in outputs:
        assert round_trip(scored_schema, o.scored)["rule_ids"] == o.scored["rule_ids"]
    fired = round_trip(alert_schema, alerts[0])
    assert (
        fired["rule_ids"]
        and fired["features"]
        and fired["model_version"] == f"rules-{initial_rules().version}"
    )
    assert set(expected_alerts(outputs)) == {str(a["source_event_id"]) for a in alerts}


def test_default_rules_file_is_the_default_rule_book() -> None:
    rules = RuleSet.of(load_rule_file(DEFAULT_RULES_FILE))
    assert rules.rules == RuleSet.of(DEFAULT_RULES).rules
    assert rules.version == initial_rules().version  # the job's fallback and the published book agree


def test_rule_files_in_json_and_yaml(tmp_path: Path) -> None:
    rule = {"rule_id": "big", "version": 2, "name": "big", "kind": "THRESHOLD", "score": 0.9,
            "threshold_amount": "1000.00"}  # fmt: skip
    (tmp_path / "r.json").write_text(json.dumps({"rules": [rule]}))
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {rule_id: big, version: 2, name: big, kind: THRESHOLD, score: 0.9,\n"
        "     threshold_amount: '1000.00'}\n"
    )
    for path in (tmp_path / "r.json", tmp_path / "r.yaml"):
        [loaded] = load_rule_file(path)
        assert (loaded.rule_id, loaded.version, loaded.threshold_amount) == ("big", 2, Decimal("1000.00"))


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ('rules = [{rule_id = "x", version = 1, name = "x", kind = "GEO", score = 0.5}]', RuleError,
         "GEO rules need parameters.max_kmh"),
        ('rules = [{rule_id = "x", version = 1, name = "x", kind = "NOPE", score = 0.5}]', RuleError, "NOPE"),
        ("rules = []", RuleFileError, "non-empty list"),
        ("rules = [", RuleFileError, "cannot be parsed"),
    ],
)  # fmt: skip
def test_bad_rule_files_are_refused_naming_the_problem(
    tmp_path: Path, text: str, error: type[Exception], message: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(error, match=message):
        load_rule_file(path)


def test_wire_format_header() -> None:
    assert schema_id_of(struct.pack(">bI", 0, 42) + b"\x02") == 42
    with pytest.raises(WireFormatError, match="magic byte 7"):
        schema_id_of(b"\x07\x00\x00\x00\x01")
    with pytest.raises(WireFormatError, match="too short"):
        schema_id_of(b"\x00\x00")


def test_submit_command_uses_the_flink_interpreter_in_thread_mode() -> None:
    settings = load_settings(flink={"rest_url": "http://127.0.0.1:18082"})
    command = submit_command(settings, "fraud", parallelism=2, from_savepoint="file:///sp/1")
    joined = " ".join(command)
    assert "-m 127.0.0.1:18082" in joined and "-p 2" in joined and "-s file:///sp/1" in joined
    assert "python.execution-mode=thread" in joined and command[-3:] == ["-pym", "flink_jobs.launch", "fraud"]
    assert ".venv-flink/bin/python" in command[command.index("-pyexec") + 1]
    assert "site-packages" in command[command.index("-pypath") + 1]


def test_jobs_commands_say_when_flink_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    _register_subcommands()
    monkeypatch.setenv("RIVERBANK_FLINK__REST_URL", f"http://127.0.0.1:{free_port()}")
    runner = CliRunner()
    result = runner.invoke(app, ["jobs", "list"])
    assert result.exit_code != 0 and "did not answer" in result.output
    result = runner.invoke(app, ["jobs", "cancel", "not-an-id"])
    assert result.exit_code != 0 and "is not a Flink job id" in result.output
    result = runner.invoke(app, ["jobs", "submit", "nosuchjob", "--detach"])
    assert result.exit_code != 0 and "unknown job 'nosuchjob'" in result.output
