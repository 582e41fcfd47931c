"""A secret's source: an environment variable or a file, never the config text itself.

Its own module so that config models in other modules (config/identity.py) can name it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SecretRef"]


class SecretRef(BaseModel):
    """A secret read from an environment variable or a file, never written in the config itself."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

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
