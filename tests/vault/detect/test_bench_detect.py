"""The detection benchmark returns results in the shape `tarcza bench` prints."""

from __future__ import annotations

from bench.detect import run


class TestDetectBenchmark:
    def test_results_have_the_agreed_shape(self) -> None:
        """run() gives throughput next to presidio's, and the three quality figures next to presidio's."""
        messages: list[str] = []
        results = run(notes=30, seed=5, progress=messages.append)
        assert [(r.name, r.target) for r in results] == [
            ("scrub_notes_per_s", "ratio >= 2"), ("recall_checksummed", "value >= 0.99"),
            ("recall_overall", "value >= 0.95"), ("precision_overall", "value >= 0.95")]
        assert all(r.value > 0 and r.baseline_value > 0 and r.higher_is_better for r in results)
        assert all(r.baseline_name.startswith("presidio_analyzer_engine") for r in results)
        assert all(0 <= r.value <= 1 for r in results[1:])
        assert messages
