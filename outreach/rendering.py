"""Template rendering: Jinja2, sandboxed and strict (a missing field is an error, never "Beste ,").

Templates live in ``templates/<channel>/<name>.<lang>.<part>.j2`` where part is ``txt`` (SMS,
letter body, call script, email plain text), ``subject`` or ``html`` (email).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

FALLBACK_LANGUAGE = "nl"


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    subject: str | None = None
    html: str | None = None
    language: str = "nl"
    note: str | None = None  # e.g. "language en missing, fell back to nl"


class Renderer:
    def __init__(self, templates_dir: str | Path) -> None:
        self.root = Path(templates_dir)
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(self.root)),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def _path(self, channel: str, name: str, language: str, part: str) -> str:
        return f"{channel}/{name}.{language}.{part}.j2"

    def _language(self, channel: str, name: str, language: str) -> tuple[str, str | None]:
        if (self.root / self._path(channel, name, language, "txt")).exists():
            return language, None
        if (self.root / self._path(channel, name, FALLBACK_LANGUAGE, "txt")).exists():
            return FALLBACK_LANGUAGE, f"language {language} missing, fell back to {FALLBACK_LANGUAGE}"
        raise TemplateError(f"no template {self._path(channel, name, language, 'txt')} (nor nl)")

    def _render(self, path: str, context: dict) -> str:
        try:
            return self.env.get_template(path).render(**context).strip()
        except TemplateNotFound as exc:
            raise TemplateError(f"template {path} not found") from exc
        except Exception as exc:  # UndefinedError and friends: name the file
            raise TemplateError(f"{path}: {exc}") from exc

    def render(self, channel: str, name: str, language: str, context: dict) -> Rendered:
        language, note = self._language(channel, name, language)
        body = self._render(self._path(channel, name, language, "txt"), context)
        subject = html = None
        if channel == "email":
            subject = self._render(self._path(channel, name, language, "subject"), context)
            html = self._render(self._path(channel, name, language, "html"), context)
        return Rendered(body=body, subject=subject, html=html, language=language, note=note)
