"""Safety filters in the configuration (`servers[].filters`, docs/safety.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ..safety.poisoning import POISONING_RULES
from ..safety.rules import compile_error
from ..safety.secrets import SECRET_RULES
from .base import Model, Name, SecretRef, http_url, refuse

__all__ = [
    "FilterConfig",
    "GuardFilterConfig",
    "PoisoningFilterConfig",
    "RegexFilterConfig",
    "SecretsFilterConfig",
]

ToolName = Annotated[str, Field(min_length=1, max_length=4096)]
CallPhase = Literal["arguments", "result"]
# The text one filter reads per value: past it the value is refused, not half-read (safety/rules.py).
MaxInputChars = Annotated[int, Field(ge=1024, le=64 * 1_048_576)]


class _FilterBase(Model):
    id: Name = Field(description="Names the filter in the audit feed; unique within the server.")
    tools: tuple[ToolName, ...] | None = Field(
        default=None, description="Only these tools (default: every tool of the server)."
    )
    skip_tools: tuple[ToolName, ...] = Field(default=(), description="Never these tools.")

    @model_validator(mode="after")
    def _selection(self) -> _FilterBase:
        both = sorted(set(self.tools or ()) & set(self.skip_tools))
        if both:
            raise refuse(
                f"{', '.join(map(repr, both))} also listed in tools: a tool is one or the other", "skip_tools"
            )
        return self


def _known_rules(rules: tuple[str, ...] | None, known: dict[str, str]) -> tuple[str, ...] | None:
    for i, rule in enumerate(rules or ()):
        if rule not in known:
            raise refuse(f"unknown rule {rule!r}: expected one of {', '.join(known)}", i)
    return rules


def _patterns(patterns: dict[str, str]) -> dict[str, str]:
    for name, pattern in patterns.items():
        problem = compile_error(pattern)
        if problem is not None:
            raise refuse(problem, name)
    return patterns


class SecretsFilterConfig(_FilterBase):
    """Built-in credential detection (safety/secrets.py)."""

    type: Literal["secrets"]
    screen: tuple[CallPhase, ...] = Field(default=("result",), min_length=1)
    action: Literal["redact", "deny"] = "redact"
    rules: tuple[str, ...] | None = Field(
        default=None, description="A subset of the built-in rules; default: all."
    )
    max_input_chars: MaxInputChars = 1_048_576

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _known_rules(value, SECRET_RULES)


class RegexFilterConfig(_FilterBase):
    """Configured patterns (RE2 syntax), redacting or denying."""

    type: Literal["regex"]
    screen: tuple[CallPhase, ...] = Field(default=("arguments", "result"), min_length=1)
    action: Literal["redact", "deny"]
    patterns: dict[Name, str] = Field(min_length=1, max_length=64, description="rule name -> RE2 pattern.")
    max_input_chars: MaxInputChars = 1_048_576

    @field_validator("patterns")
    @classmethod
    def _compiled(cls, value: dict[str, str]) -> dict[str, str]:
        return _patterns(value)


class PoisoningFilterConfig(_FilterBase):
    """Tool-description poisoning patterns, judged as tools are learned (safety/poisoning.py)."""

    type: Literal["poisoning"]
    mode: Literal["enforce", "record"] = "enforce"
    rules: tuple[str, ...] | None = Field(
        default=None, description="A subset of the built-in rules; default: all."
    )
    patterns: dict[Name, str] = Field(
        default_factory=dict, max_length=64, description="Extra rules: name -> RE2 pattern."
    )
    max_input_chars: MaxInputChars = 1_048_576

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _known_rules(value, POISONING_RULES)

    @field_validator("patterns")
    @classmethod
    def _compiled(cls, value: dict[str, str]) -> dict[str, str]:
        return _patterns(value)

    @model_validator(mode="after")
    def _some_rule(self) -> PoisoningFilterConfig:
        if self.rules == () and not self.patterns:
            raise refuse("no rules and no patterns: the filter would flag nothing", "rules")
        return self


class GuardFilterConfig(_FilterBase):
    """An external guard service (safety/guard.py): the call or result as JSON -> a verdict."""

    type: Literal["guard"]
    url: str = Field(description="Where the gateway POSTs each call or result.")
    screen: tuple[CallPhase, ...] = Field(default=("arguments", "result"), min_length=1)
    timeout_seconds: float = Field(default=5, gt=0, le=120)
    max_concurrency: int = Field(default=32, ge=1, le=4096)
    # A safety check that could not run has not passed: closed unless the operator says otherwise.
    on_failure: Literal["deny", "allow"] = "deny"
    header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    secret: SecretRef | None = Field(
        default=None, description="The header value's source, if the guard needs one."
    )
    max_answer_bytes: int = Field(default=16 * 1_048_576, ge=1024, le=64 * 1_048_576)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value, "use header and secret")


FilterConfig = Annotated[
    SecretsFilterConfig | RegexFilterConfig | PoisoningFilterConfig | GuardFilterConfig,
    Field(discriminator="type"),
]
