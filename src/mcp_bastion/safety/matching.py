"""The call filter behind `secrets` and `regex`: named patterns that redact or deny.

Arguments and results are walked whole (keys and strings; `rules.py`). With `redact`, each
match becomes `[redacted:RULE]` and the call goes on; with `deny`, a match refuses the call
or the result. A value with more text than the filter's cap is refused either way (rule
`too-large`): a filter that could not read it all cannot say it is clean.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from .rules import RuleSet
from .verdict import ALLOW, CallContext, Verdict

__all__ = ["TOO_LARGE", "PatternFilter"]

TOO_LARGE: Final = "too-large"


class PatternFilter:
    __slots__ = ("_deny", "_rules", "id")

    def __init__(self, filter_id: str, rules: RuleSet, action: Literal["redact", "deny"]) -> None:
        self.id = filter_id
        self._rules = rules
        self._deny = action == "deny"

    async def on_arguments(self, call: CallContext, arguments: Any) -> Verdict:
        return self._screen(arguments)

    async def on_result(self, call: CallContext, value: Any, error: bool) -> Verdict:
        return self._screen(value)

    def _screen(self, value: Any) -> Verdict:
        if self._deny:
            found = self._rules.find(value)
            if found is None:
                return Verdict("deny", (TOO_LARGE,))
            return Verdict("deny", found) if found else ALLOW
        redacted = self._rules.redact(value)
        if redacted is None:
            return Verdict("deny", (TOO_LARGE,))
        new, found = redacted
        return Verdict("redact", found, new) if found else ALLOW
