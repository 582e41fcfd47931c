"""Cedar policies in the configuration (`policy:`, docs/policy.md): files, claims, time zone."""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Literal

from pydantic import Field, field_validator

from .base import Model, refuse

__all__ = ["PRINCIPAL_ATTRIBUTES", "PolicyClaim", "PolicyConfig", "PolicyFile"]

# Cedar identifiers (attribute names policies write as `principal.groups`), less the keywords
# Cedar reserves and the attributes every principal already has (cedar/schema.py).
_CEDAR_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_CEDAR_RESERVED = frozenset(
    {"true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar", "principal", "action"}
    | {"resource", "context", "permit", "forbid", "when", "unless"}
)
PRINCIPAL_ATTRIBUTES = ("subject", "issuer", "client", "scopes")
PolicyFile = Annotated[str, Field(min_length=1, max_length=4096, description="A Cedar policy file's path.")]


class PolicyClaim(Model):
    """A claim of the verified token, exposed to Cedar policies as an attribute of the principal."""

    claim: str | tuple[str, ...] = Field(
        description="The claim's name (exactly, dots included: `https://example.com/groups`), or a list "
        "of names for a claim nested in objects (`[realm_access, roles]`)."
    )
    type: Literal["set", "string"] = Field(
        default="set",
        description="`set`: a list of strings (a single string counts as a list of one); `string`: text. "
        "An absent claim is an empty set or empty text; a claim of another shape refuses the call.",
    )

    @field_validator("claim")
    @classmethod
    def _claim_names(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        names = (value,) if isinstance(value, str) else value
        if not names or not all(names):
            raise ValueError("a claim is named by non-empty text, or a non-empty list of names")
        return value


def _default_claims() -> dict[str, PolicyClaim]:
    # The two claims most IdPs use for these (Entra ID, Okta, Keycloak with its group mapper).
    return {"groups": PolicyClaim(claim="groups"), "roles": PolicyClaim(claim="roles")}


class PolicyConfig(Model):
    """Cedar policies checked after scopes (docs/policy.md). Without any policy file, no Cedar runs."""

    files: tuple[PolicyFile, ...] = Field(
        default=(),
        description="Cedar policy files applied to every server, relative to this config file's folder.",
    )
    claims: dict[str, PolicyClaim] = Field(
        default_factory=_default_claims,
        description="Principal attributes policies may read, each from a token claim; default: "
        "`groups` and `roles` (sets). Given, it replaces the default.",
    )
    timezone: str = Field(
        default="UTC",
        description="The IANA time zone of `context.time` (hour, minute, weekday), e.g. Europe/Paris.",
    )
    # Arguments reach Cedar in full (a cut-off argument could slip past a rule on it), so a call
    # whose arguments are larger than this is refused while policies are on.
    max_argument_bytes: int = Field(
        default=65_536,
        ge=1024,
        le=64 * 1_048_576,
        description="A call whose arguments (as JSON) exceed this is refused when policies are on.",
    )

    @field_validator("claims")
    @classmethod
    def _attribute_names(cls, value: dict[str, PolicyClaim]) -> dict[str, PolicyClaim]:
        for name in value:
            if not re.match(_CEDAR_IDENTIFIER, name) or name in _CEDAR_RESERVED:
                raise refuse(
                    f"{name!r} cannot be a Cedar attribute name: expected letters, digits and '_', "
                    "not starting with a digit, and not a Cedar keyword",
                    name,
                )
            if name in PRINCIPAL_ATTRIBUTES:
                raise refuse(
                    f"{name!r} is already an attribute of every principal "
                    f"({', '.join(PRINCIPAL_ATTRIBUTES)}): choose another name",
                    name,
                )
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known IANA time zone (e.g. UTC, Europe/Paris)") from None
        return value
