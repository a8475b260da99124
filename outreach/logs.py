"""Structured (JSON lines) logging with personal data masked, for the web service and the CLI."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from outreach.pii import scrub

# attributes every LogRecord has; anything else came in through ``extra=`` and is a field
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message and every string field pass through pii.scrub."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(doc, default=lambda v: scrub(str(v)), ensure_ascii=False)


def log_config(level: str = "INFO") -> dict:
    """A dictConfig for uvicorn and our loggers: JSON to stderr, nothing else."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
            "outreach": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
