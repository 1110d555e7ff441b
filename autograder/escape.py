"""Student text, made safe for each place it is shown.

Everything a student's code can put in a message (an exception's text, a folder's name)
first becomes one line of printable characters, capped in length (:func:`one_line`); then
each report escapes it for its own format: markdown (:func:`markdown`), XML 1.0
(:func:`xml`) and the terminal (``one_line`` already removed every control character).
"""

from __future__ import annotations

import os
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


def student_name(text, limit: int = MAX_MESSAGE) -> str:
    """A student's (folder) name as it must be shown: every character a reader could not see or
    tell apart from another written as an escape. Control and format characters (a zero-width
    space), combining marks, spaces other than an inner ASCII space, a leading or trailing space
    and the backslash itself become ``\\uXXXX`` (``\\\\``), so ``alice``, ``alice\\u200b`` and
    ``alice\\u0020`` stay three names in every report."""
    text = str(text)
    shown = []
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        edge = i == 0 or i == len(text) - 1
        if ch == "\\":
            shown.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":  # a byte that is not UTF-8 (os.fsdecode's surrogateescape)
            shown.append(f"\\x{ord(ch) - 0xdc00:02x}")
        elif category[0] in "CZ" and not (ch == " " and not edge) or category == "Mn":
            shown.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            shown.append(ch)
    text = "".join(shown)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def path_text(path) -> str:
    """A path as text any file format can hold: bytes of a name that are not UTF-8 (a legal
    folder name on Linux) written as ``\\xNN`` instead of the lone surrogates os.fsdecode gives."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


# Letters of other scripts drawn like Latin ones (Unicode's confusables, the common part).
_HOMOGLYPHS = str.maketrans("аеорсухіјԁһӏѕԛԝαοτνκ", "aeopcyxijdhlsqwaotvk")


def look_alike_key(name: str) -> str:
    """What a name looks like on a screen: compatibility forms folded (NFKC), case folded,
    invisible characters, spaces and combining marks dropped, common homoglyphs mapped to Latin."""
    folded = unicodedata.normalize("NFKC", str(name)).casefold()
    kept = "".join(ch for ch in unicodedata.normalize("NFD", folded)
                   if unicodedata.category(ch)[0] not in "CZ" and unicodedata.category(ch) != "Mn")
    return kept.translate(_HOMOGLYPHS)


def look_alike_groups(names) -> list[list[str]]:
    """Groups of two or more different names that look the same (``look_alike_key``)."""
    groups: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        groups.setdefault(look_alike_key(name), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def spreadsheet_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: student text that starts like a formula is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
