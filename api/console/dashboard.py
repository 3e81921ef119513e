"""The dashboard: what is due, what was flagged, what the log says; each panel only for the roles it is for.

A panel is shown when the policies allow its action (the same decisions as the API's
routes): subject requests, retention and legal holds need ``gdpr.manage``; firewall
decisions, checkpoints and verification need ``audit.read``; break-glass reveals awaiting
review need ``policies.review``. Nothing on it is personal data: tokens, codes, counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console import charts
from api.console.i18n import Translator
from api.console.register_pages import registers_summary
from api.console.state import current_verification, last_verification, retention_summary
from api.console.web import PREFIX, ConsoleRoute, ConsoleUser, PostedForm, User, language_of, redirect, render
from api.deps import RuntimeDep
from api.runtime import Runtime
from audit.events import Channel
from core.errors import ConflictError, NotFoundError, PermissionDeniedError
from policies.review import list_break_glass, review_break_glass

router = APIRouter(route_class=ConsoleRoute)

DUE_SOON_DAYS: Final = 7
DECISION_DAYS: Final = 7
CHART_DAYS: Final = 14
REQUEST_STATUSES: Final = ("received", "verified", "completed", "refused")
_PAGE: Final = 500


def dashboard_page(request: Request, user: ConsoleUser, runtime: Runtime) -> HTMLResponse:
    t = Translator(language_of(request))
    now = runtime.clock.now()
    context: dict[str, Any] = {"panels": set()}
    if user.can("gdpr.manage"):
        context["panels"] |= {"requests", "retention", "holds"}
        items, _ = runtime.gdpr.requests(user.principal, view="open", limit=200)
        for item in items:
            item["due_soon"] = not item["overdue"] and item["days_left"] is not None and (
                item["days_left"] <= DUE_SOON_DAYS)
        context["requests"] = items
        context["retention_at"], context["retention"] = retention_summary(runtime)
        context["holds"] = runtime.gdpr.active_holds(user.principal)
        context["requests_chart"] = requests_chart(runtime, user, t)
        context["panels"].add("registers")
        context["registers"] = registers_summary(runtime)
    if user.can("audit.read"):
        context["panels"] |= {"decisions", "log"}
        decisions = runtime.contacts.recent_decisions(now - timedelta(days=DECISION_DAYS), limit=200)
        context["denials"] = [d for d in decisions if d["decision"] == "refuse"]
        context["flagged"] = [d for d in decisions if d["decision"] == "flag"]
        context["checkpoint"] = runtime.audit.latest_checkpoint()
        context["log_size"] = runtime.audit.size()
        context["verification"] = last_verification(runtime)
        context["verifying"] = current_verification(runtime)
        context["contacts_chart"] = contacts_chart(runtime, t, now.date())
        context["denials_chart"] = denials_chart(context["denials"], t)
    if user.can("policies.review"):
        context["panels"].add("break_glass")
        context["break_glass"] = list_break_glass(runtime.audit, awaiting_only=True, limit=100)
    notice = request.query_params.get("notice")
    return render(request, "dashboard.html", user=user, now=now, decision_days=DECISION_DAYS,
                  notice=notice if notice in _NOTICES else None, **context)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    return dashboard_page(request, user, runtime)


_NOTICES: Final = frozenset({"break_glass_reviewed", "break_glass_review_failed"})


@router.post("/break-glass/{index}/review")
def review_break_glass_reveal(index: int, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """The DPO's or an auditor's verdict on a break-glass reveal: an entry of the log, then back to the dashboard."""
    if not user.can("policies.review"):
        raise PermissionDeniedError("policies.review refused", rule="role")
    verdict = form.text("verdict")
    if verdict not in ("justified", "unjustified") or index < 0:
        return redirect(f"{PREFIX}/?notice=break_glass_review_failed#panel-break-glass")
    try:
        review_break_glass(runtime.audit, user.principal.actor, index, verdict)
    except (NotFoundError, ConflictError):
        return redirect(f"{PREFIX}/?notice=break_glass_review_failed#panel-break-glass")
    return redirect(f"{PREFIX}/?notice=break_glass_reviewed#panel-break-glass")


# -- charts ---------------------------------------------------------------------------------------------


def contacts_chart(runtime: Runtime, t: Translator, today: date) -> charts.Chart:
    first = today - timedelta(days=CHART_DAYS - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=runtime.clock.now().tzinfo)
    days = [first + timedelta(days=n) for n in range(CHART_DAYS)]
    counts = {(channel, day): n for channel, day, n in runtime.contacts.counts_by_channel_and_day(since)}
    series = [(t(f"channel.{c.value}"), [counts.get((c.value, day), 0) for day in days]) for c in Channel]
    series = [s for s in series if any(s[1])] or series[:1]
    return charts.stacked_columns("chart-contacts", t("charts.contacts_title", days=CHART_DAYS),
                                  [d.isoformat() for d in days], series, category_header=t("charts.day"),
                                  total_header=t("charts.total"), empty_text=t("charts.empty"))


def requests_chart(runtime: Runtime, user: ConsoleUser, t: Translator) -> charts.Chart:
    counts: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        items, cursor = runtime.gdpr.requests(user.principal, view="all", cursor=cursor, limit=_PAGE)
        counts.update(item["status"] for item in items)
        if cursor is None:
            break
    data = [(t(f"status.{s}"), counts.get(s, 0)) for s in REQUEST_STATUSES]
    return charts.bar_chart("chart-requests", t("charts.requests_title"), data if any(n for _, n in data) else [],
                            label_header=t("charts.status"), value_header=t("charts.count"),
                            empty_text=t("charts.empty"))


def denials_chart(denials: list[dict[str, Any]], t: Translator) -> charts.Chart:
    counts: Counter[str] = Counter(rule for d in denials for rule in (d["rules"] or ["unknown"]))
    data = [(rule, n) for rule, n in counts.most_common()]
    return charts.bar_chart("chart-denials", t("charts.denials_title", days=DECISION_DAYS), data,
                            label_header=t("charts.rule"), value_header=t("charts.count"),
                            empty_text=t("charts.empty"))
