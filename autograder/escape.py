"""Student text, made safe for each place it is shown.

Everything a student's code can put in a message (an exception's text, a folder's name)
first becomes one line of printable characters, capped in length (:func:`one_line`); then
each report escapes it for its own format: markdown (:func:`markdown`), XML 1.0
(:func:`xml`) and the terminal (``one_line`` already removed every control character).
"""

from __future__ import annotations

import re
import unicodedata

MAX_MESSAGE = 300
# Brackets are escaped, so a "(" can never complete a link or an image: it stays readable.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>#+!|~&])")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def one_line(text, limit: int = MAX_MESSAGE) -> str:
    """Printable characters only (newlines and tabs become spaces; terminal escapes, other
    control and format characters go), runs of spaces collapsed, at most ``limit`` long."""
    text = str(text)
    text = "".join(" " if ch in "\t\n\r\v\f" else ch for ch in text
                   if ch in "\t\n\r\v\f" or unicodedata.category(ch)[0] != "C")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown(text) -> str:
    """One line, with every character markdown or HTML would interpret escaped."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def xml(text) -> str:
    """Only characters XML 1.0 allows (ElementTree escapes &, < and > itself)."""
    return _XML_ILLEGAL.sub("", str(text))


def block(text) -> str:
    """Many lines for the instructor (a traceback), inside a markdown code fence: control
    characters removed, and no run of backticks that could close the fence."""
    lines = [one_line(line, limit=2000) for line in str(text).splitlines()]
    return "\n".join(lines).replace("```", "`\u200b`\u200b`")
