"""
===============================================
Comparing and diagnosing calibration of models
===============================================

Compare how well four classifiers are calibrated with the calibration scorers of
:mod:`skmoe.metrics` inside :func:`~sklearn.model_selection.cross_validate`, put an
uncertainty on one of the numbers with the bootstrap, and read reliability diagrams
drawn by :class:`skmoe.inspection.ReliabilityDisplay` — including one panel per expert
of a mixture of experts, on the samples routed to it.
"""

# %%
# Data and models
# ---------------
# A three-class problem whose classes are each made of two clusters, with four
# redundant features (linear combinations of the informative ones). Gaussian naive
# Bayes assumes the features independent and so counts the same evidence several
# times: it should be over-confident. A random forest's averaged votes are known to
# be under-confident near 0 and 1.
import warnings

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split
from sklearn.naive_bayes import GaussianNB

from skmoe import MixtureOfExpertsClassifier
from skmoe.inspection import ReliabilityDisplay
from skmoe.metrics import (
    bootstrap_confidence_interval,
    expected_calibration_error,
    get_scorer,
)

X, y = make_classification(
    n_samples=2000, n_features=10, n_informative=4, n_redundant=4, n_classes=3,
    n_clusters_per_class=2, class_sep=1.2, random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)
models = {
    "logistic": LogisticRegression(max_iter=1000),
    "naive Bayes": GaussianNB(),
    "random forest": RandomForestClassifier(n_estimators=100, min_samples_leaf=3,
                                            random_state=0),
    "mixture of experts": MixtureOfExpertsClassifier(
        n_experts=3, routing="soft", max_iter=6, random_state=0
    ),
}
# a few EM iterations are enough here; the mixture says it did not converge
warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# Calibration scorers in cross-validation
# ---------------------------------------
# The scorers return the *negated* error (higher is better, as everywhere in
# scikit-learn). scikit-learn does not know skmoe's scorer names, so we pass scorer
# objects from :func:`skmoe.metrics.get_scorer` in a dict, next to sklearn's own
# ``"accuracy"`` and ``"neg_log_loss"``.
scoring = {
    "ECE": get_scorer("neg_expected_calibration_error"),
    "smooth ECE": get_scorer("neg_smooth_calibration_error"),
    "classwise ECE": get_scorer("neg_classwise_calibration_error"),
    "debiased L2": get_scorer("neg_debiased_calibration_error"),
    "log loss": "neg_log_loss",
    "accuracy": "accuracy",
}
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
rows = {}
for name, model in models.items():
    results = cross_validate(model, X_train, y_train, cv=cv, scoring=scoring)
    rows[name] = {
        metric: (1 if metric == "accuracy" else -1) * results[f"test_{metric}"].mean()
        for metric in scoring
    }
table = pd.DataFrame(rows).T
print(table.round(3))

# %%
# Naive Bayes has the largest calibration error by every measure, and its log loss
# is the worst although its accuracy is close to the logistic regression's: the
# log loss pays for the miscalibration. The mixture of experts is the best
# calibrated and nearly as accurate as the forest. The smooth ECE needs no choice of
# bins, and the debiased L2 error removes the part of the binned error that noise
# alone produces.
#
# How sure are we of one number?
# ------------------------------
# A held-out ECE is an estimate. The bootstrap resamples the test set; note that a
# binned error is biased upward and resampling adds to it, so the interval of a
# well-calibrated model can lie above its point estimate.
fitted = {name: model.fit(X_train, y_train) for name, model in models.items()}
for name in ("logistic", "naive Bayes"):
    proba = fitted[name].predict_proba(X_test)
    interval = bootstrap_confidence_interval(
        expected_calibration_error, y_test, proba, n_resamples=200, random_state=0
    )
    print(f"{name:12s} ECE {interval.estimate:.3f}  "
          f"95% bootstrap interval [{interval.low:.3f}, {interval.high:.3f}]")

# %%
# Reading a reliability diagram
# -----------------------------
# Each point is one bin of test samples grouped by confidence (the top
# probability): its mean confidence on the x-axis, the fraction right on the y-axis.
# Points **below** the diagonal are over-confident bins, points above it
# under-confident ones. The bars give the number of samples per bin: a point backed
# by a handful of samples says little. The smooth curve (``smooth=True``) is the
# kernel-smoothed version whose error is the smooth ECE, drawn only where there are
# data.
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
for ax, name in zip(axes, ("logistic", "naive Bayes", "random forest"), strict=True):
    ReliabilityDisplay.from_estimator(
        fitted[name], X_test, y_test, n_bins=10, smooth=True, name=name, ax=ax
    )

# %%
# Naive Bayes puts most test samples into the last bin, with confidence above 0.93,
# where it is right less than 90 % of the time: that over-confidence, weighted by
# the tall bar under it, dominates its ECE. The logistic regression and the random
# forest lie above the diagonal in the middle range: there they are under-confident,
# right more often than they claim. Isolated points far off the diagonal at low
# confidence sit on bins of a few samples and carry little weight.
#
# Per-expert panels of a mixture of experts
# -----------------------------------------
# For a mixture, ``per_expert=True`` adds one panel per expert, drawn with the
# expert's own probabilities on its *routed view* (the samples whose largest routing
# weight is that expert's). Under hard routing, a mixture whose experts are each
# calibrated on their views stays calibrated under shifts that keep
# ``P(y | expert, confidence)`` fixed, so these panels show where recalibration is
# needed. The titles give the number of samples routed to each expert.
display = ReliabilityDisplay.from_estimator(
    fitted["mixture of experts"], X_test, y_test, n_bins=10, smooth=True,
    per_expert=True, name="mixture",
)
plt.show()
