"""Base class for every typed config section: frozen, unknown keys are errors."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A frozen pydantic model that rejects keys it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid")
