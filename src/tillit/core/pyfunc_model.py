"""MLflow models-from-code entry: the registered pyfunc wraps one pickled tillit model.

Every model tillit registers (invoice, provider, table) is a pickled object with a
`risk(frame)` method, higher = look first; the pyfunc has it as its one artifact.
`mlflow.pyfunc.load_model("models:/<name>@champion").predict(frame)` returns that risk,
one value per row. tillit itself never loads models this way (see ops/integrity.py).
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

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray:
        return self.model.risk(model_input)


mlflow.models.set_model(TillitRiskPyfunc())
