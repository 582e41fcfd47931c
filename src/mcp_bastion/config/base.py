"""What every part of the configuration model shares: the strict base model, refusals that name
their key, names, scopes and secrets by reference."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["Model", "Name", "Scope", "Seconds", "SecretRef", "http_url", "refuse", "unique"]

NAME_SYNTAX = r"^[a-z0-9][a-z0-9_-]{0,62}$"
SCOPE_SYNTAX = r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$"  # RFC 6749 §3.3 scope-token characters


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def refuse(message: str, *at: str | int) -> PydanticCustomError:
    """A model-level refusal that points at the exact key below the model (`at`), so the
    message names `identity_providers[0].issuer`, not only `identity_providers[0]`."""
    return PydanticCustomError("bastion", "{detail}", {"detail": message, "at": at})


Name = Annotated[
    str, Field(pattern=NAME_SYNTAX, description="Lower-case name: letters, digits, '-' and '_'.")
]
Scope = Annotated[str, Field(pattern=SCOPE_SYNTAX, description="An OAuth scope token (RFC 6749 §3.3).")]
Seconds = Annotated[float, Field(gt=0, le=86_400)]


class SecretRef(Model):
    """A secret read from an environment variable or a file, never written in the config itself."""

    env: str | None = Field(default=None, description="Name of the environment variable holding the secret.")
    file: str | None = Field(
        default=None, description="Path of a file holding the secret (trailing newline dropped)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if self.env is not None and self.file is not None:
            raise ValueError("found both 'env' and 'file': give exactly one of them")
        if self.env is None and self.file is None:
            raise ValueError("found neither 'env' nor 'file': give exactly one, e.g. {env: VARIABLE}")
        return self


def http_url(value: str, instead: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ValueError(f"must not carry credentials; {instead}")
    return value


def unique(items: tuple[Model, ...], key: str, field: str, why: str) -> None:
    """Refuse the second item of `items` whose `field` repeats an earlier one's, saying `why`."""
    first: dict[object, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, field)
        if value in first:
            raise refuse(f"{value!r} is also the {field} of {key}[{first[value]}]: {why}", key, i, field)
        first[value] = i
