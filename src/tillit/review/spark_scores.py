"""Risk scores computed on the Spark executors with `mlflow.pyfunc.spark_udf`.

Why: a national month's invoices can be scored where the data lies instead of on the
driver. The model is never loaded from the store: `spark_udf` is built from the
integrity-verified private copy (`ops/integrity.verified_copy`), every file hashed and
checked against the signed train record first. Columns are passed as one struct, so they
bind to the model's signature by name. Whether a finding type is too common this month
is the whole month's question; it is answered on the driver and handed to every batch
(`model_config["demoted_findings"]`). Explanations stay on the driver, for flagged rows.

Needs the `tillit[spark]` extra; imported only for `--score-on executors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tillit.errors import TillitError


def executor_risk(
    session: Any, client: Any, store: Path, ref: Any, model: Any, features: pd.DataFrame
) -> pd.Series:
    """The risk of every invoice of `features`, by invoice_id, computed on the executors.

    Raises:
        TillitError: the month holds more than one period, or the registered model has no
            full signature (an older registration; retrain).
        ModelUnavailableError: the model's files fail verification.
    """
    import mlflow
    from pyspark.sql import functions as F

    from tillit.features.spark_engine import spark_ready
    from tillit.ops.integrity import verified_copy

    if features["period"].nunique() > 1:
        raise TillitError("scoring on the executors takes one month at a time")
    columns = list(model.feature_columns)
    demoted = model.demoted_findings(features) if len(features) else []
    with verified_copy(client, store, ref) as copy:
        signature = mlflow.models.Model.load(str(copy / "MLmodel")).signature
        named = set(signature.inputs.input_names()) if signature is not None else set()
        if not set(columns) <= named:
            raise TillitError(
                f"{ref.name} version {ref.version} has no full signature (its columns cannot "
                "bind by name on the executors): retrain it with this tillit"
            )
        udf = mlflow.pyfunc.spark_udf(
            session,
            str(copy),
            result_type="double",
            env_manager="local",
            model_config={"demoted_findings": demoted},
        )
        frame = session.createDataFrame(
            spark_ready(features.loc[:, ["invoice_id", *columns]].reset_index(drop=True))
        )
        scored = frame.select(
            "invoice_id", udf(F.struct(*[F.col(c) for c in columns])).alias("risk_score")
        ).toPandas()
    return scored.set_index("invoice_id")["risk_score"].astype("float64")


__all__ = ["executor_risk"]
