"""MLflow models-from-code entry: the registered pyfunc wraps one pickled tillit model.

Every model tillit registers (invoice, provider, table) is a pickled object with a
`risk(frame)` method, higher = look first; the pyfunc has it as its one artifact.
`mlflow.pyfunc.load_model("models:/<name>@champion").predict(frame)` returns that risk,
one value per row. tillit itself never loads models this way from the store (see
ops/integrity.py); `tillit score --score-on executors` loads the integrity-verified
private copy through `mlflow.pyfunc.spark_udf`, with the month's demoted finding types
as `model_config["demoted_findings"]` (each executor sees a batch, not the month).
"""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class TillitRiskPyfunc(PythonModel):
    """Loads the pickled model (the pyfunc's one artifact); predict gives its risk in [0, 1]."""

    def load_context(self, context: PythonModelContext) -> None:
        (path,) = context.artifacts.values()
        self.model = joblib.load(path)
        config = getattr(context, "model_config", None) or {}
        demoted = config.get("demoted_findings")
        self.demoted = None if demoted is None else [str(code) for code in demoted]

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray:
        if self.demoted is None:
            return self.model.risk(model_input)
        return self.model.risk(model_input, demoted=self.demoted)


mlflow.models.set_model(TillitRiskPyfunc())
