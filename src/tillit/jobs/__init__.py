"""The edges of the pipeline, one module per command: read inputs, run the stages, write outputs.

The stages (data, features, modelling, review) are pure functions of frames;
these jobs are what the CLI commands and Makefile targets call. Each returns a
typed outcome. The names below are imported on first use: `tillit score` reads and
checks the export while its model (and scikit-learn with it) loads on another thread,
which an eager import of every job here would put back in front of both.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tillit.jobs.common import AUDIT_LOG, TRUTH_FILE, LoadedData, load_data, read_truth
    from tillit.jobs.features import FeaturesOutcome, run_features
    from tillit.jobs.feedback import FeedbackOutcome, run_feedback
    from tillit.jobs.promote import run_promote
    from tillit.jobs.pseudonymise import PseudonymiseOutcome, run_pseudonymise
    from tillit.jobs.score import ScoreOutcome, period_quarantine, run_score
    from tillit.jobs.train import TrainOutcome, run_train

_MODULE_OF = {
    "AUDIT_LOG": "common",
    "TRUTH_FILE": "common",
    "LoadedData": "common",
    "load_data": "common",
    "read_truth": "common",
    "FeaturesOutcome": "features",
    "run_features": "features",
    "FeedbackOutcome": "feedback",
    "run_feedback": "feedback",
    "run_promote": "promote",
    "PseudonymiseOutcome": "pseudonymise",
    "run_pseudonymise": "pseudonymise",
    "ScoreOutcome": "score",
    "period_quarantine": "score",
    "run_score": "score",
    "TrainOutcome": "train",
    "run_train": "train",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'tillit.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tillit.jobs.{module}"), name)


__all__ = [
    "AUDIT_LOG",
    "TRUTH_FILE",
    "FeaturesOutcome",
    "FeedbackOutcome",
    "LoadedData",
    "PseudonymiseOutcome",
    "ScoreOutcome",
    "TrainOutcome",
    "load_data",
    "period_quarantine",
    "read_truth",
    "run_features",
    "run_feedback",
    "run_promote",
    "run_pseudonymise",
    "run_score",
    "run_train",
]
