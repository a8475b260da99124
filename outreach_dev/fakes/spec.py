"""Check requests against the providers' own OpenAPI descriptions (``specs/``).

Two levels, same spec:

* ``fast_errors``: the operation's parameter and body schemas, resolved once and compiled into
  JSON-Schema validators (openapi-schema-validator, the engine openapi-core uses). About a tenth
  of a millisecond per SMS, so the local servers check *every* request even under benchmark load.
* ``strict_errors``: full openapi-core validation (path, security, parameters, media type
  decoding, body). 5-20 ms a request; the servers run it on every request when started with
  ``strict=True`` (the tests do), or on a recorded request afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator, OAS31Validator

SPECS = Path(__file__).with_name("specs")


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    params: dict[str, dict[str, Any]]  # name -> {"in": ..., "schema": ..., "required": ...}
    body_schema: dict[str, Any] | None
    body_type: str | None


def _resolve(node: Any, root: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline every local $ref (the specs we use have no recursive schemas)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in seen:
                return {}
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            merged = {
                **_resolve(target, root, (*seen, ref)),
                **{k: v for k, v in node.items() if k != "$ref"},
            }
            return merged
        return {k: _resolve(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, root, seen) for v in node]
    return node


def _cast(value: str, schema: Mapping[str, Any]) -> Any:
    """A form or query string to the type the schema expects (as openapi-core would)."""
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise ValueError(f"not a boolean: {value!r}")
        return value.lower() == "true"
    return value


class SpecCheck:
    """Validators for the operations of one provider spec file."""

    def __init__(self, filename: str) -> None:
        self.path = SPECS / filename
        self.spec: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        self.version = self.spec["openapi"]
        self.validator_cls = OAS31Validator if self.version.startswith("3.1") else OAS30Validator
        self.operations: list[Operation] = []
        for template, item in self.spec["paths"].items():
            shared = item.get("parameters", [])
            for method in ("get", "post", "put", "delete", "patch"):
                if method not in item:
                    continue
                op = _resolve(item[method], self.spec)
                params = {}
                for p in [*_resolve(shared, self.spec), *op.get("parameters", [])]:
                    params[p["name"]] = {
                        "in": p["in"],
                        "schema": p.get("schema", {}),
                        "required": p.get("required"),
                    }
                body_schema = body_type = None
                content = (op.get("requestBody") or {}).get("content") or {}
                if content:
                    body_type, media = next(iter(content.items()))
                    body_schema = media.get("schema")
                regex = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
                self.operations.append(
                    Operation(method, template, re.compile(regex), params, body_schema, body_type)
                )
        self._validators: dict[tuple[str, str, str], Any] = {}

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for op in self.operations:
            if op.method == method.lower() and (match := op.pattern.match(path)):
                return op, match.groupdict()
        return None

    def _validator(self, op: Operation, part: str, schema: dict[str, Any]) -> Any:
        key = (op.method, op.template, part)
        if key not in self._validators:
            self._validators[key] = self.validator_cls(
                schema, format_checker=self.validator_cls.FORMAT_CHECKER
            )
        return self._validators[key]

    def fast_errors(
        self,
        method: str,
        path: str,
        query: Mapping[str, Sequence[str]],
        body: Any = None,
        form: Mapping[str, Sequence[str]] | None = None,
    ) -> list[tuple[str, str]]:
        """(field, message) for each way the request breaks the spec; empty when it conforms.
        ``body`` is parsed JSON, ``form`` a parsed urlencoded body (values as lists)."""
        found = self.find(method, path)
        if found is None:
            return [("", f"{method.upper()} {path} is not an operation of {self.path.name}")]
        op, path_values = found
        errors: list[tuple[str, str]] = []
        values: dict[str, Any] = {}
        props: dict[str, Any] = {}
        required: list[str] = []
        for name, param in op.params.items():
            if param["in"] == "path":
                raw: Sequence[str] | None = [path_values[name]] if name in path_values else None
            elif param["in"] == "query":
                raw = query.get(name)
            else:
                continue
            props[name] = param["schema"]
            if param.get("required"):
                required.append(name)
            if raw:
                try:
                    values[name] = _cast(raw[0], param["schema"])
                except ValueError as exc:
                    errors.append((name, f"cannot cast to {param['schema'].get('type')}: {exc}"))
        param_schema = {"type": "object", "properties": props, "required": required}
        for err in self._validator(op, "params", param_schema).iter_errors(values):
            errors.append((".".join(map(str, err.absolute_path)), err.message))
        if op.body_schema is not None:
            if form is not None:
                body = self._cast_form(op.body_schema, form, errors)
            if body is None:
                errors.append(("", "request body is required"))
            else:
                for err in self._validator(op, "body", op.body_schema).iter_errors(body):
                    errors.append((".".join(map(str, err.absolute_path)), err.message))
        return errors

    @staticmethod
    def _cast_form(schema: Mapping[str, Any], form: Mapping[str, Sequence[str]], errors: list) -> dict:
        props = schema.get("properties", {})
        out: dict[str, Any] = {}
        for name, raw in form.items():
            prop = props.get(name, {})
            try:
                if prop.get("type") == "array":
                    out[name] = [_cast(v, prop.get("items", {})) for v in raw]
                else:
                    out[name] = _cast(raw[-1], prop)
            except ValueError as exc:
                errors.append((name, f"cannot cast to {prop.get('type')}: {exc}"))
        return out

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Where a JSON response body departs from the spec's schema for that status."""
        found = self.find(method, path)
        if found is None:
            return [f"{method.upper()} {path} is not an operation of {self.path.name}"]
        op, _ = found
        raw = self.spec["paths"][op.template][op.method]["responses"].get(str(status))
        if raw is None:
            return []  # the spec does not describe this status (Twilio's errors are undocumented)
        content = (_resolve(raw, self.spec).get("content") or {}).get("application/json")
        if not content or "schema" not in content:
            return [] if body in (None, b"", "") else [f"status {status} has no body in the spec"]
        key = (op.method, op.template, f"response-{status}")
        if key not in self._validators:
            self._validators[key] = self.validator_cls(content["schema"], format_checker=None)
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in self._validators[key].iter_errors(body)
        ]

    # -- strict: openapi-core ------------------------------------------------------------------

    @cached_property
    def openapi(self) -> Any:
        from openapi_core import OpenAPI

        return OpenAPI.from_dict(self.spec)

    def strict_errors(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes | None
    ) -> list[str]:
        """Every openapi-core error for the request (empty when it conforms)."""
        from urllib.parse import parse_qsl

        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        server = self.spec["servers"][0]["url"]
        content_type = headers.get("Content-Type", "") or ""

        class _Request:
            host_url = server

            def __init__(self) -> None:
                self.method = method.lower()
                self.path = path
                self.full_url_pattern = server + path
                self.parameters = RequestParameters(
                    query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)),
                    header=Headers(dict(headers)),
                    cookie=ImmutableMultiDict(),
                )
                self.body = body
                self.content_type = content_type.lower()

        return [_flatten(err) for err in self.openapi.iter_request_errors(_Request())]


def _flatten(err: BaseException) -> str:
    parts = [str(err)[:300]]
    for sub in getattr(err, "schema_errors", None) or []:
        parts.append(
            f"{'.'.join(map(str, getattr(sub, 'absolute_path', [])))}: {getattr(sub, 'message', sub)}"
        )
    cause = err.__cause__
    while cause is not None:
        parts.append(str(cause)[:300])
        for sub in getattr(cause, "schema_errors", None) or []:
            parts.append(
                f"{'.'.join(map(str, getattr(sub, 'absolute_path', [])))}: {getattr(sub, 'message', sub)}"
            )
        cause = cause.__cause__
    return " | ".join(parts)
