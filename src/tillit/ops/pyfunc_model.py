"""MLflow models-from-code entry: the registered pyfunc wraps a pickled RiskModel.

`mlflow.pyfunc.load_model("models:/<name>@champion").predict(feature_table)` returns
the same combined risk as `tillit score`, one value per row of the feature table.
"""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class TillitRiskPyfunc(PythonModel):
    """Loads the RiskModel artifact; predict gives the combined risk in [0, 1]."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model = joblib.load(context.artifacts["risk_model"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray:
        return self.model.risk(model_input)


mlflow.models.set_model(TillitRiskPyfunc())
