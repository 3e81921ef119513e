"""The policies benchmark returns results in the shape `tarcza bench` prints."""

from __future__ import annotations

from bench.policies import run, workload


class TestPoliciesBenchmark:
    def test_results_have_the_agreed_shape(self) -> None:
        """run() gives decide and cedar-only rates per size, each next to the Python role-check baseline."""
        results = run("sqlite", sizes=(40,))
        assert [r["name"] for r in results] == ["decide_40", "cedar_only_40"]
        for r in results:
            assert set(r) == {"name", "value", "unit", "baseline_name", "baseline_value", "ratio", "target",
                              "higher_is_better"}
            assert r["unit"] == "decisions/s"
            assert r["baseline_name"] == "python_role_check"
            assert r["value"] > 0
            assert r["baseline_value"] > 0
            assert r["higher_is_better"] is True

    def test_workload_is_deterministic(self) -> None:
        """The same seed gives the same requests, so runs compare."""
        assert [w[1] for w in workload(30)] == [w[1] for w in workload(30)]
