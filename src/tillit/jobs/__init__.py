"""The edges of the pipeline, one module per command: read inputs, run the stages, write outputs.

The stages (data, features, modelling, review) are pure functions of frames;
these jobs are what the CLI commands and Makefile targets call. Each returns a
typed outcome.
"""

from tillit.jobs.common import AUDIT_LOG, TRUTH_FILE, LoadedData, load_data, read_truth
from tillit.jobs.features import FeaturesOutcome, run_features
from tillit.jobs.feedback import FeedbackOutcome, run_feedback
from tillit.jobs.promote import run_promote
from tillit.jobs.pseudonymise import PseudonymiseOutcome, run_pseudonymise
from tillit.jobs.score import ScoreOutcome, period_quarantine, run_score
from tillit.jobs.train import TrainOutcome, run_train

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
