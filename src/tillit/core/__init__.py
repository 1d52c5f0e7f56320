"""The stream-agnostic core: what every stream (home care, the provider scorecard, table mode) shares.

- `registry`: the MLflow edge (log a training run, register the model with its signature
  and integrity hashes, give it the `challenger` alias); promotion is `ops.tracking.promote`.
- `pyfunc_model`: the one MLflow models-from-code entry every registered model uses.
- `risk_list`: the risk-list schema, parameterised by the id column.
- `feedback`: the reviewers' decision log and its vocabulary.
- `html`: the page skeleton and stylesheet of every report.
- `findings`: the findings vocabulary a stream hands the blend.
- `keys`: when a secret key is too weak (pseudonymisation and audit-trail keys alike).

Nothing here imports a stream; streams import the core. Importing does nothing.
"""
