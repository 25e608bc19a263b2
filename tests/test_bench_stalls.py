"""The fraud bench's grouping of slow alerts and their placement against checkpoints."""

from bench.stalls import Checkpoint, SlowAlert, checkpoint_share, episodes, last_checkpoint, stall_report


def alert(sent: int, scored: int, alerted: int) -> SlowAlert:
    return SlowAlert(sent_ms=sent, scored_ms=scored, alerted_ms=alerted)


def test_slow_alerts_sent_close_together_are_one_episode() -> None:
    found = episodes([alert(1_000, 1_150, 1_200), alert(5_000, 5_020, 5_300), alert(1_100, 1_200, 1_250)])
    assert [(e.start_ms, e.span_ms, len(e.alerts)) for e in found] == [(1_000, 100, 2), (5_000, 0, 1)]
    assert found[0].worst_ms == 200
    # (150 + 100) of (200 + 150) ms before the scorer.
    assert round(found[0].inbound_share, 3) == round(250 / 350, 3)


def test_the_last_checkpoint_triggered_at_or_before_an_instant() -> None:
    checkpoints = [Checkpoint(n, 2_000 * n, 50, 1_000) for n in (1, 2, 3)]
    assert last_checkpoint(1_999, checkpoints) is None
    assert last_checkpoint(2_000, checkpoints) == checkpoints[0]
    assert last_checkpoint(5_500, checkpoints) == checkpoints[1]


def test_checkpoint_share_compares_slow_alerts_after_triggers_with_the_time_those_windows_cover() -> None:
    checkpoints = [Checkpoint(n, 2_000 * n, 50, 1_000) for n in range(1, 6)]
    slow = [alert(3_990, 4_100, 4_150), alert(6_000, 6_200, 6_250), alert(6_500, 7_000, 7_100)]
    share = checkpoint_share(slow, checkpoints, window_ms=500)
    assert share == (2 / 3, 0.25)
    assert checkpoint_share(slow, checkpoints[:1], window_ms=500) is None


def test_report_names_the_checkpoint_an_episode_followed() -> None:
    checkpoints = [Checkpoint(7, 10_000, 80, 2_500_000), Checkpoint(8, 12_000, 90, 2_600_000)]
    report = stall_report(
        [alert(12_030, 12_180, 12_200)], checkpoints, phase_start_ms=2_000, threshold_ms=100
    )
    assert "1 in 1 episodes" in report
    assert "at +10.0s" in report
    assert "sent 30 ms after checkpoint 8's trigger (90 ms, 2.6 MB)" in report
    assert stall_report([], checkpoints, 0, 100).endswith("none")
