"""JSON-lines files of records (scored pairs, triples, multi-label examples): one object a line."""

from __future__ import annotations

import json
from pathlib import Path

from nlpx.errors import UserError


def json_objects(path: Path, expects: str):
    """(line number, object) for each non-blank line of a .jsonl file (UTF-8, a BOM dropped); a
    line that is not a JSON object is a UserError naming file:line (`expects` says what each line
    should hold, e.g. "keys 'text' and 'labels'")."""
    from nlpx.data.files import text_lines

    for lineno, line in enumerate(text_lines(Path(path)), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object with {expects}")
        yield lineno, obj
