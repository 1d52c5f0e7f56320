"""MLflow models-from-code entry for the provider model: the pyfunc wraps a pickled ProviderRiskModel.

`mlflow.pyfunc.load_model("models:/tillit-provider-risk@champion").predict(provider_months)`
returns the provider risk of `tillit providers`, one value per provider-month row.
"""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class TillitProviderPyfunc(PythonModel):
    """Loads the ProviderRiskModel artifact; predict gives the provider risk in [0, 1]."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model = joblib.load(context.artifacts["provider_model"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray:
        return self.model.risk(model_input)


mlflow.models.set_model(TillitProviderPyfunc())
