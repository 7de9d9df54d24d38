"""Reading text files line by line with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

from nlpx.errors import UserError


def text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a BOM dropped, "\r\n" or "\n" line ends), for the readers that
    report errors by line number; invalid UTF-8 is one line naming the file and line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        lineno = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{lineno}: not valid UTF-8 (byte 0x{data[e.start]:02x}); "
                        "GLUE files are UTF-8") from None
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline (or an empty file)
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
