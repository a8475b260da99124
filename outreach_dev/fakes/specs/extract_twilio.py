"""Cut the Messages resource (and every schema it references) out of Twilio's full v2010 spec.

The full description is 1.8 MB and takes seconds to load; the local server only speaks the
Messages endpoints. Run: python extract_twilio.py /path/to/twilio_api_v2010.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PATHS = (
    "/2010-04-01/Accounts/{AccountSid}/Messages.json",
    "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json",
)


def refs(node: object) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


def extract(spec: dict) -> dict:
    paths = {p: spec["paths"][p] for p in PATHS}
    schemas: dict[str, object] = {}
    pending = refs(paths)
    while pending:
        ref = pending.pop()
        name = ref.removeprefix("#/components/schemas/")
        if name in schemas:
            continue
        schemas[name] = spec["components"]["schemas"][name]
        pending |= refs(schemas[name])
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec["servers"],
        "security": spec["security"],
        "paths": paths,
        "components": {"securitySchemes": spec["components"]["securitySchemes"], "schemas": schemas},
    }


if __name__ == "__main__":
    full = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = Path(__file__).with_name("twilio_api_v2010_messages.json")
    out.write_text(json.dumps(extract(full), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
