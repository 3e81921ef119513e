"""Judge a pip-audit JSON report (``make pip-audit``).

Fails on a known vulnerability that ``docs/security/dependency-exceptions.txt`` does not
document (or documents past its review date), and on an audit that could not fetch the
vulnerability data for every distribution: an audit that audited nothing must not pass.
With ``warn`` as the last argument, that last case is a loud warning instead (known
vulnerabilities still fail).

Usage: pip_audit_check.py REPORT.json PIP_AUDIT.log EXCEPTIONS.txt fail|warn
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def documented_exceptions(path: Path, today: date) -> tuple[set[str], list[str]]:
    """The vulnerability ids documented as accepted, and those past their review date."""
    documented: set[str] = set()
    expired: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            vuln_id, review_by = fields[0], date.fromisoformat(fields[1])
            documented.add(vuln_id)
            if review_by < today:
                expired.append(f"{vuln_id} (review by {review_by})")
    return documented, expired


def judge(report: Path, log: Path, exceptions: Path, unreachable: str) -> tuple[list[str], list[str], str]:
    """(failures, warnings, summary) for one pip-audit run."""
    documented, expired = documented_exceptions(exceptions, datetime.now(UTC).date())
    deps: list[dict[str, Any]] | None
    try:
        deps = json.loads(report.read_text(encoding="utf-8"))["dependencies"]
    except (OSError, ValueError, KeyError):
        deps = None
    failures: list[str] = []
    warnings: list[str] = []
    if deps is None:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:] if log.exists() else []
        unaudited = [tail[0] if tail else "pip-audit wrote no report"]
        audited: list[dict[str, Any]] = []
        warnings.append(f"the audit did not run: {unaudited[0]}")
    else:
        unaudited = [d["skip_reason"] for d in deps if "skip_reason" in d and "editable" not in d["skip_reason"]]
        audited = [d for d in deps if "vulns" in d]
        if unaudited:
            warnings.append(f"{len(unaudited)} distribution(s) could NOT be audited; first: {unaudited[0]}")
    for dep in audited:
        for vuln in dep["vulns"]:
            if not {vuln["id"], *vuln.get("aliases", [])} & documented:
                fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
                failures.append(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
    if expired:
        failures.append("dependency exceptions past their review date: " + ", ".join(expired))
    if unaudited:
        if unreachable == "warn":
            warnings.append("WARNING: continuing without a complete audit (PIP_AUDIT_UNREACHABLE=warn)")
        else:
            failures.append("the vulnerability data could not be fetched for every distribution (set "
                            "PIP_AUDIT_UNREACHABLE=warn only where that is known and accepted)")
    summary = (f"{len(audited)} of {len(audited) + len(unaudited)} distribution(s) audited, "
               "no undocumented known vulnerability among them")
    return failures, warnings, summary


def main(argv: list[str]) -> int:
    report, log, exceptions, unreachable = argv[1:5]
    failures, warnings, summary = judge(Path(report), Path(log), Path(exceptions), unreachable)
    for line in warnings:
        sys.stderr.write(f"pip-audit: {line}\n")
    for line in failures:
        sys.stderr.write(f"pip-audit: FAIL: {line}\n")
    if failures:
        return 1
    sys.stdout.write(f"pip-audit: {summary}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
