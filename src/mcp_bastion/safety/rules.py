"""Named patterns over every string of a JSON value, in time linear in the value's size.

Every pattern a filter runs, built in or from the config, is compiled by RE2 (google-re2),
whose matching time is linear in the input whatever the pattern: a pattern that would
backtrack catastrophically in Python's `re` (`(a+)+$`, an operator's slip) or an input
built to make one backtrack (a result of `-----BEGIN`s with no end) costs one pass, not
minutes. No timeout is needed, so none can be tuned wrong. RE2 refuses what it cannot do in
linear time (backreferences, lookaround): for a configured pattern that is a config error.

All patterns of a rule set are matched in one pass (`re2.Set`); only a string that matched
is searched again, rule by rule, to redact it. Values are walked without recursion (a result
may nest a thousand levels deep), keys and strings alike; numbers and booleans are not read.
The characters a filter reads per value are capped: past the cap it cannot vouch for the
value and says so (`None`), and its caller fails closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import re2  # google-re2 ships no type information: Any here (pyproject's mypy overrides)

__all__ = ["MAX_PATTERN_CHARS", "RuleSet", "compile_error", "joinable"]

MAX_PATTERN_CHARS: Final = 1024
# RE2's memory budget per compiled pattern: a program larger than this (`(x{1000}){1000}`)
# is refused when compiled, at start-up, not met at run time.
_MAX_MEM: Final = 4 << 20


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print refused patterns on stderr
    options.max_mem = _MAX_MEM
    return options


def compile_error(pattern: str) -> str | None:
    """Why RE2 refuses `pattern`, or None: for config validation."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"a pattern may be at most {MAX_PATTERN_CHARS} characters long, found {len(pattern)}"
    if not pattern:
        return "a pattern may not be empty (it would match everything)"
    try:
        re2.compile(pattern, _options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        return f"not a pattern RE2 accepts ({text}); backreferences and lookaround are not supported"
    return None


def joinable(pattern: str) -> bool:
    """Whether `pattern` certainly matches the same inside joined text: no anchor, and nothing
    that might be one. Conservative: `[$]` or `\\\\^` also count; `\\$` is a dollar sign."""
    for i, char in enumerate(pattern):
        escaped = i > 0 and pattern[i - 1] == "\\" and _unescaped(pattern, i - 1)
        if char == "$" and not escaped:
            return False
        if char == "^" and not (i > 0 and pattern[i - 1] == "[" and _unescaped(pattern, i - 1)):
            return False
        if char in "Az" and escaped:
            return False
    return True


def _unescaped(pattern: str, i: int) -> bool:
    """The character at `i` is not escaped: an even number of backslashes before it."""
    count = 0
    while i - count - 1 >= 0 and pattern[i - count - 1] == "\\":
        count += 1
    return count % 2 == 0


class RuleSet:
    """Rules by name, each an RE2 pattern; `find` says which match, `redact` replaces them.

    A call costs RE2 about a microsecond however short the text, and a tool result is a
    dozen short keys and strings: so all the value's text is first matched once, joined by
    newlines, and only a value with a hit is read text by text. That finds what text-by-text
    matching finds for patterns without anchors (a newline is no word character, so `\\b`
    holds at the joins; a match that spans two texts only costs the exact pass). A pattern
    with an anchor, or what might be one (`^` other than after an opening `[`, `$`, `\\A`,
    `\\z`), makes its rule set match text by text.
    """

    __slots__ = ("_joinable", "_regexps", "_set", "_tokens", "max_input_chars", "names")

    def __init__(self, rules: Sequence[tuple[str, str]], *, max_input_chars: int) -> None:
        options = _options()
        self.names = tuple(name for name, _ in rules)
        self._tokens = tuple(f"[redacted:{name}]" for name in self.names)
        self.max_input_chars = max_input_chars
        self._joinable = all(joinable(pattern) for _, pattern in rules)
        self._set = re2.Set.SearchSet(options)
        for _, pattern in rules:
            self._set.Add(pattern)
        self._set.Compile()
        self._regexps = tuple(re2.compile(pattern, options) for _, pattern in rules)

    def find(self, value: Any) -> tuple[str, ...] | None:
        """The names of the rules that match some key or string of `value` (in rule order);
        None when `value` holds more than `max_input_chars` characters of text."""
        texts = self._bounded_texts(value)
        if texts is None:
            return None
        if not self._may_match(texts):
            return ()
        found: set[int] = set()
        for text in texts:
            matched = self._set.Match(text)
            if matched:
                found.update(matched)
        return self._names(found)

    def redact(self, value: Any) -> tuple[Any, tuple[str, ...]] | None:
        """`value` with every match replaced by `[redacted:RULE]` (containers changed in
        place), and the names of the rules that matched; None past `max_input_chars`."""
        texts = self._bounded_texts(value)
        if texts is None:
            return None
        if not self._may_match(texts):
            return value, ()
        found: set[int] = set()
        if isinstance(value, str):
            return self._redacted(value, found), self._names(found)
        stack: list[Any] = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                renamed: list[tuple[str, str]] = []
                for key, item in node.items():
                    if isinstance(item, str):
                        new = self._redacted(item, found)
                        if new is not item:
                            node[key] = new
                    elif isinstance(item, (dict, list)):
                        stack.append(item)
                    new_key = self._redacted(key, found)
                    if new_key is not key:
                        renamed.append((key, new_key))
                for key, new_key in renamed:
                    node[new_key] = node.pop(key)
            elif isinstance(node, list):
                for i, item in enumerate(node):
                    if isinstance(item, str):
                        new = self._redacted(item, found)
                        if new is not item:
                            node[i] = new
                    elif isinstance(item, (dict, list)):
                        stack.append(item)
        return value, self._names(found)

    def _bounded_texts(self, value: Any) -> list[str] | None:
        texts = _texts(value)
        total = 0
        for text in texts:
            total += len(text)
        return texts if total <= self.max_input_chars else None

    def _may_match(self, texts: list[str]) -> bool:
        if not texts:
            return False
        if not self._joinable:
            return True
        return bool(self._set.Match("\n".join(texts)))

    def _redacted(self, text: str, found: set[int]) -> str:
        if not text:
            return text
        matched = self._set.Match(text)
        if not matched:
            return text
        for i in matched:
            # A rule name is letters, digits, '-' and '_': nothing `sub` would read as a group.
            text = self._regexps[i].sub(self._tokens[i], text)
        found.update(matched)
        return text

    def _names(self, found: set[int]) -> tuple[str, ...]:
        return tuple(self.names[i] for i in sorted(found))


def _texts(value: Any) -> list[str]:
    """Every key and string of a JSON value, without recursion."""
    texts: list[str] = []
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if node:
                texts.append(node)
        elif isinstance(node, dict):
            texts.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return texts
