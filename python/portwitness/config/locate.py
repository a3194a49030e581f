"""Finding where a value sits in TOML text. tomllib returns plain dicts without positions, so an error
found after parsing (a bad port, an unknown key) is placed by scanning the text: the N-th `[[table]]`
header, the `key =` line inside it, and the offending item after it."""

from __future__ import annotations

import re

_KEY_LINE = re.compile(r"\s*(?:\"[^\"]*\"|'[^']*'|[\w.-]+)\s*=")


def _header(line: str) -> tuple[str, bool] | None:
    """(raw name, array-of-tables?) when the line is a `[table]` or `[[table]]` header, maybe with a
    comment after it. A linear scan: the regex it replaces backtracked cubically on `[` and blanks."""
    s = line.lstrip()
    if not s.startswith("["):
        return None
    array = s.startswith("[[") and not s.startswith("[[]")
    rest = s[2:] if array else s[1:]
    close = rest.find("]")
    if close <= 0:
        return None
    after = rest[close + 1 :]
    if after.startswith("]"):
        after = after[1:]
    after = after.lstrip()
    if after and not after.startswith("#"):
        return None
    return rest[:close].strip(), array


def _table_name(raw: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in raw.split("."))


class TomlLocator:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # (0-based line, table name, array-of-tables?) for every header, in order.
        self.headers: list[tuple[int, str, bool]] = []
        self._index: dict[tuple[str, bool], list[int]] | None = None
        for i, line in enumerate(self.lines):
            h = _header(line)
            if h:
                self.headers.append((i, _table_name(h[0]), h[1]))

    def _block(self, table: str, index: int | None) -> tuple[int, int] | None:
        """The 0-based line span [start, end) of a table's body; table "" is the top level."""
        if not table:
            return 0, self.headers[0][0] if self.headers else len(self.lines)
        if self._index is None:
            # Built once: a policy of 10,000 services looks a header up per service.
            self._index = {}
            for n, (_, name, array) in enumerate(self.headers):
                self._index.setdefault((name, array), []).append(n)
        found = self._index.get((table, index is not None), [])
        pick = index or 0
        if pick >= len(found):
            return None
        n = found[pick]
        end = self.headers[n + 1][0] if n + 1 < len(self.headers) else len(self.lines)
        return self.headers[n][0], end

    def has_table(self, table: str, index: int | None = None) -> bool:
        return bool(table) and self._block(table, index) is not None

    def header(self, table: str, index: int | None = None) -> tuple[int, int]:
        """1-based line and column of the table's header (line 1, column 1 when it cannot be found)."""
        block = self._block(table, index)
        if block is None or not table:
            return 1, 1
        line = self.lines[block[0]]
        return block[0] + 1, len(line) - len(line.lstrip()) + 1

    def key(self, table: str, index: int | None, key: str) -> tuple[int, int, int] | None:
        """1-based line, key column and value column of `key = ...` in the table's body."""
        block = self._block(table, index)
        if block is None:
            return None
        k = re.escape(key)
        pattern = re.compile(rf"\s*(\"{k}\"|'{k}'|{k})\s*=\s*")
        for i in range(block[0], block[1]):
            m = pattern.match(self.lines[i])
            if m:
                return i + 1, m.start(1) + 1, m.end() + 1
        return None

    def locate(
        self,
        table: str,
        index: int | None,
        key: str | None,
        *,
        at_key: bool = False,
        item: object = None,
        offset: int = 0,
    ) -> tuple[int, int]:
        """Where to point an error: the key itself (`at_key`), the `item` among its values (for a string,
        `offset` characters into it), else the start of its value, else the table's header."""
        found = self.key(table, index, key) if key else None
        if found is None:
            return self.header(table, index)
        line, key_col, value_col = found
        if at_key:
            return line, key_col
        if item is not None:
            hit = self._item(table, index, line, value_col, item)
            if hit:
                return hit[0], hit[1] + offset
        return line, value_col

    def _item(
        self, table: str, index: int | None, line: int, col: int, item: object
    ) -> tuple[int, int] | None:
        """The item's literal after the key, possibly on the following lines of a multi-line array."""
        if isinstance(item, bool) or not isinstance(item, int | str):
            return None
        if isinstance(item, str):
            pattern = re.compile(r"([\"'])" + re.escape(item) + r"\1")
            skip = 1  # point inside the quotes, at the text itself
        else:
            pattern = re.compile(r"(?<![\w.+-])" + re.escape(str(item)) + r"(?![\w.])")
            skip = 0
        block = self._block(table, index)
        end = block[1] if block else line
        for i in range(line - 1, end):
            if i > line - 1 and _KEY_LINE.match(self.lines[i]):
                break  # the next key's value: the item is not written literally
            start = col - 1 if i == line - 1 else 0
            m = pattern.search(self.lines[i], start)
            if m:
                return i + 1, m.start() + 1 + skip
        return None
