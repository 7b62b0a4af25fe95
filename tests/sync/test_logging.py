"""Logs: one JSON object a line in containers, run context bound, secrets never printed."""

from __future__ import annotations

import io
import json

import structlog

from sync.logging import bind_run, clear_run, configure_logging, phase


def test_json_lines_carry_run_context_and_mask_secrets() -> None:
    """Secret-named keys and registered secret values are masked wherever they appear."""
    buf = io.StringIO()
    configure_logging("json", "INFO", secrets=["s3cret-access-key-value"], stream=buf)
    try:
        bind_run(run_id="r-1")
        log = structlog.get_logger()
        with phase("pull", stream="salesforce.Account"):
            log.info(
                "pulled",
                records=3,
                access_token="tok-123456",
                detail="upstream said: bad key s3cret-access-key-value",
                headers={"Authorization": "Bearer xyz-987654", "Accept": "json"},
            )
        log.debug("not shown at INFO")
    finally:
        clear_run()
        configure_logging("console", "WARNING")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "pulled"
    assert line["run_id"] == "r-1"
    assert line["phase"] == "pull"
    assert line["stream"] == "salesforce.Account"
    assert line["records"] == 3
    assert line["access_token"] == "***"
    assert "s3cret-access-key-value" not in buf.getvalue()
    assert "xyz-987654" not in buf.getvalue()
    assert line["headers"]["Accept"] == "json"
