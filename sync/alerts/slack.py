"""The Slack sink's rendering: an incoming-webhook message in Block Kit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DIGEST_SECTIONS = 45  # Slack: 50 blocks a message (header, sections, overflow, context)


def slack_message(alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message in Block Kit, with a plain-text fallback."""
    if alert.get("kind") == "sync_health":
        return _sync_health_message(alert)
    if alert.get("kind") in ("digest", "triage_digest"):
        if alert.get("kind") == "digest":
            lines = [
                "• "
                + _link(
                    (a.get("account") or {}).get("salesforce_url"),
                    _cut(_one_line(a["title"]), 300),
                )
                for a in alert["alerts"]
            ]
        else:
            lines = [_triage_line(a) for a in alert["accounts"]]
        chunks = _chunks(lines, 2800)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(alert["title"], 150)}}
        ]
        recipient = alert.get("recipient")
        if alert.get("kind") == "triage_digest" and recipient:
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _cut("*DRI* " + _who(recipient), 3000)},
                }
            )
        shown = chunks[:DIGEST_SECTIONS]
        for text in shown:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        listed = sum(text.count("\n") + 1 for text in shown)
        if listed < len(lines):
            # Slack allows 50 blocks a message: say how many did not fit rather than drop them.
            more = f"… and {len(lines) - listed} more (every alert is in the log sink)"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more}})
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"teamsync digest · key `{_esc(alert['idempotency_key'])}`",
                    }
                ],
            }
        )
        return {"text": _cut(_esc(alert["title"]), 3000), "blocks": blocks}
    acc = alert["account"]
    health = alert["health"]
    team = alert["team"]
    score = "unknown" if health["score"] is None else f"{health['score']:g}"
    before = "unknown" if health["previous_score"] is None else f"{health['previous_score']:g}"
    fields = [
        f"*Segment*\n{_esc(acc['segment'])}",
        f"*ARR*\n{_money(acc['arr'])}",
        f"*Health*\n{score} ({_esc(health['band'])}), before {before}",
        f"*Trend*\n{_esc(health['trend'] or 'n/a')}",
        "*Renewal*\n"
        + (f"in {acc['days_to_renewal']} days" if acc["days_to_renewal"] is not None else "none"),
        f"*Risk flags*\n{_esc(', '.join(alert['flags']) or 'none')}",
    ]
    people = []
    if team["dri"]:
        people.append("*DRI* " + _who(team["dri"]))
    for p in team["consulted"]:
        people.append("*Consulted* " + _who(p))
    for p in team["informed"]:
        people.append("*Informed* " + _who(p))
    escalation = alert.get("escalation")
    if escalation:
        people.append("*Escalated to* " + _who(escalation["to"]))
    if alert.get("lost"):
        # TEAM_WIPED: who was on the team before its rows were deleted.
        people.insert(
            0,
            "*Lost from the team* "
            + "; ".join(
                f"{_esc(p.get('role') or 'member')}: "
                + _esc(p.get("name") or p.get("email") or p.get("user_id") or "?")
                for p in alert["lost"]
            ),
        )
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert["title"], 150)}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _cut(f, 2000)} for f in fields],
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut("\n".join(people) or "No team on record", 3000),
            },
        },
    ]
    buttons = []
    if acc.get("salesforce_url"):
        buttons.append(_button("Salesforce account", acc["salesforce_url"], "open_salesforce"))
    if acc.get("gainsight_url"):
        buttons.append(_button("Gainsight C360", acc["gainsight_url"], "open_gainsight"))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    context = [{"type": "mrkdwn", "text": f"teamsync · key `{_esc(alert['idempotency_key'])}`"}]
    if alert["missing"]:
        warning = ":warning: " + _esc("; ".join(alert["missing"]))
        context.insert(0, {"type": "mrkdwn", "text": _cut(warning, 3000)})
    blocks.append({"type": "context", "elements": context})
    return {"text": _cut(_esc(alert["title"]), 3000), "blocks": blocks}


def _triage_line(a: dict[str, Any]) -> str:
    score = "unknown" if a.get("score") is None else f"{a['score']:g}"
    parts = [f"{score} ({a.get('band')})"]
    if a.get("trend"):
        parts.append(f"trend {a['trend']}")
    if a.get("days_to_renewal") is not None:
        parts.append(f"renewal in {a['days_to_renewal']} days")
    label = _link(a.get("salesforce_url"), _cut(_one_line(a.get("name") or a["id"]), 200))
    return "• " + label + " — " + _esc(", ".join(parts))


def _who(p: dict[str, Any]) -> str:
    role = _esc(p["role_name"])
    if p.get("missing"):
        return f"{role}: _none assigned_" + (" (inactive user)" if p.get("inactive") else "")
    name = _esc(p["name"] or "")
    if not p["email"]:
        return f"{role}: {name or '(no name)'}"
    email = _esc(p["email"])
    label = f"{name} " if name else ""
    return f"{role}: {label}<mailto:{email}|{email}>"


def _button(text: str, url: str, action_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "url": url[:3000],
        "action_id": action_id,
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _esc(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters and must be sent as HTML entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None, text: str) -> str:
    # "|" ends a link's URL part; inside the label it is harmless once <, > are escaped.
    return f"<{url}|{_esc(text)}>" if url else _esc(text)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chunks(lines: Sequence[str], limit: int) -> list[str]:
    out: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + len(line) + 1 > limit:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out or ["(none)"]


def _sync_health_message(alert: dict[str, Any]) -> dict[str, Any]:
    """A sync-health alert (the sync itself broke or recovered): reason, next step, where."""
    icon = ":white_check_mark:" if alert.get("state") == "resolved" else ":rotating_light:"
    where = " · ".join(
        _esc(str(part))
        for part in (
            alert.get("condition"),
            f"run {alert['run_id']}" if alert.get("run_id") else None,
            alert.get("host"),
            f"teamsync {alert.get('version')}",
        )
        if part
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(alert["title"], 150)}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"{icon} *Reason*\n{_esc(alert.get('reason') or '')}", 3000),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"*Next step*\n{_esc(alert.get('next_step') or '')}", 3000),
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(f"{where} · key `{_esc(str(alert['idempotency_key']))}`", 3000),
                }
            ],
        },
    ]
    return {"text": _cut(_esc(alert["title"]), 3000), "blocks": blocks}
