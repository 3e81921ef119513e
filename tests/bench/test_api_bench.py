"""The API benchmark, at tiny sizes: a real server driven from a second process gives every figure in the
shape `tarcza bench` prints, with the targets of the issue and the conditions it ran under."""

from __future__ import annotations

from bench.api import run
from bench.common import bench_database


class TestApiBenchmark:
    def test_results_have_the_agreed_shape(self) -> None:
        """Rates and p50/p99 for single contacts, batches, masked reads, reveals and the open loop, each next
        to GET /healthz; every request of the run succeeded (the bench aborts otherwise)."""
        messages: list[str] = []
        with bench_database("sqlite") as url:
            results, conditions = run(url, seconds=0.5, connections=2, subjects=20, progress=messages.append)
        names = [r.name for r in results]
        assert names == [f"{what}_{figure}" for what in ("contact", "contact_batch", "masked_read", "reveal",
                                                         "contact_open_loop")
                         for figure in ("events_per_s" if what == "contact_batch" else "per_s", "p50_ms", "p99_ms")]
        by_name = {r.name: r for r in results}
        assert by_name["contact_per_s"].target == "value >= 1500"
        assert by_name["contact_batch_events_per_s"].target == "value >= 20000"
        assert by_name["contact_open_loop_p99_ms"].target == "value <= 50"
        for r in results:
            assert r.value > 0, r
            assert r.baseline_value > 0, r
            assert r.baseline_name.startswith("healthz_")
            assert r.higher_is_better is r.name.endswith("_per_s")
        assert "rate-limit" in conditions["rate_limits"] or "disabled" in conditions["rate_limits"]
        assert conditions["open_loop_offered_per_s"] > 0
        assert any(m.startswith("single: ") for m in messages)
