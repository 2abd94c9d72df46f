"""
=====================================================
Grid search under a shift with a calibration scorer
=====================================================

Selecting a model for shifted data means scoring the candidates on shifted folds, and
selecting it for calibrated probabilities means scoring them with a calibration
error. This example puts the two together:
:class:`~sklearn.model_selection.GridSearchCV` with
:class:`~skmoe.model_selection.CovariateShiftSplit` as ``cv`` and the expected
calibration error (ECE) scorer of :mod:`skmoe.metrics` as ``scoring``, over the routing
and the number of experts of a :class:`~skmoe.MixtureOfExpertsClassifier` on the
digits.
"""

# %%
# Shifted folds miss classes
# --------------------------
# ``CovariateShiftSplit(severity=1.0)`` sorts the digits along their first principal
# component and cuts them into five consecutive folds, so that each test fold is a
# region of the input space the training folds do not cover. The digits are far from
# evenly spread along that axis: several test folds hold no sample of some class.
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsClassifier
from skmoe.metrics import neg_expected_calibration_error_scorer
from skmoe.model_selection import CovariateShiftSplit

X, y = load_digits(return_X_y=True)
shift_cv = CovariateShiftSplit(n_splits=5, severity=1.0, random_state=0)
fold_counts = pd.DataFrame(
    [np.bincount(y[test], minlength=10) for _, test in shift_cv.split(X, y)],
    index=[f"test fold {i}" for i in range(5)],
)
fold_counts.columns.name = "digit"
print(fold_counts)

fig, ax = plt.subplots(figsize=(7, 2.8))
image = ax.imshow(fold_counts.to_numpy(), cmap="Blues")
ax.set_xticks(range(10), labels=range(10))
ax.set_yticks(range(5), labels=fold_counts.index)
ax.set_xlabel("digit")
for (row, column), count in np.ndenumerate(fold_counts.to_numpy()):
    ax.text(column, row, count, ha="center", va="center", fontsize="small",
            color="white" if count > 100 else "black")
ax.set_title("Samples of each digit in the shifted test folds")
fig.colorbar(image, ax=ax, shrink=0.8)
fig.tight_layout()

# %%
# A calibration scorer on those folds
# -----------------------------------
# A fold without a digit still asks the model for ten probabilities. The calibration
# scorers of :mod:`skmoe.metrics` pass the fitted model's ``classes_`` to the metric,
# so each column keeps its meaning and every fold gets a finite score. (A scorer made
# with :func:`sklearn.metrics.make_scorer` sees only the labels present in the fold:
# on these folds it gave NaN, and the grid search ranked the candidates arbitrarily.)
#
# scikit-learn's own ``"neg_log_loss"`` scorer has the same blind spot: on a fold
# without some digit, :func:`~sklearn.metrics.log_loss` raises, and since one failing
# scorer voids the whole fit, every score of that fold becomes NaN. Give it the
# classes explicitly with ``make_scorer(..., labels=...)``. Hard routing gives every
# class a non-zero probability, so its log loss is finite too.
# 10 EM iterations are enough to compare the candidates; the mixtures that have not
# converged by then say so with a ConvergenceWarning, silenced here
warnings.filterwarnings("ignore", category=ConvergenceWarning)
model = make_pipeline(
    StandardScaler(),
    PCA(n_components=10, random_state=0),
    MixtureOfExpertsClassifier(
        LogisticRegression(max_iter=1000), max_iter=10, random_state=0
    ),
)
grid = {
    "mixtureofexpertsclassifier__routing": ["soft", "hard"],
    "mixtureofexpertsclassifier__n_experts": [2, 4],
}
scoring = {
    "ece": neg_expected_calibration_error_scorer,
    "accuracy": "accuracy",
    "log_loss": make_scorer(log_loss, response_method="predict_proba",
                            greater_is_better=False, labels=np.arange(10)),
}


def search(cv):
    """The grid search with ``cv``, refitted on the best ECE."""
    return GridSearchCV(model, grid, scoring=scoring, refit="ece", cv=cv).fit(X, y)


shifted = search(shift_cv)
results = pd.DataFrame(shifted.cv_results_)
candidates = [
    f"{params['mixtureofexpertsclassifier__routing']}, "
    f"{params['mixtureofexpertsclassifier__n_experts']} experts"
    for params in results["params"]
]
summary = pd.DataFrame(
    {
        "ECE": -results["mean_test_ece"].to_numpy(),
        "accuracy": results["mean_test_accuracy"].to_numpy(),
        "log loss": -results["mean_test_log_loss"].to_numpy(),
    },
    index=candidates,
).round(3)
print(summary)
print("chosen under the shift:", candidates[shifted.best_index_])

# %%
# Every candidate has a finite ECE on every fold, so the choice is the candidate
# with the lowest mean ECE, not an accident of NaN handling. The spread over the
# folds is large: the outer folds ask the models to extrapolate.
fold_ece = -np.column_stack(
    [results[f"split{i}_test_ece"] for i in range(shift_cv.get_n_splits())]
)
assert np.isfinite(fold_ece).all()

fig, ax = plt.subplots(figsize=(6.5, 3.2))
for i in range(len(candidates)):
    ax.scatter(fold_ece[i], np.full(fold_ece.shape[1], i), color="0.6", s=18,
               label="one test fold" if i == 0 else None)
    ax.scatter(fold_ece[i].mean(), i, color="C0", marker="D", s=40,
               label="mean" if i == 0 else None)
ax.set_yticks(range(len(candidates)), labels=candidates)
ax.set_ylim(-0.6, len(candidates) - 0.4)
ax.set_xlabel("top-label ECE on the shifted test folds (lower is better)")
ax.axhline(shifted.best_index_, color="C1", alpha=0.3, linewidth=8,
           label="chosen")
ax.legend(loc="lower right", fontsize="small")
fig.tight_layout()

# %%
# The same search with shuffled folds
# -----------------------------------
# A stratified K-fold scores the candidates on data like their training data. Its
# ECE figures are several times smaller than under the shift, and the order of the
# candidates can change: how calibrated a model looks depends on the data it is
# judged on, which is why the folds should resemble the shift the model will meet.
in_distribution = search(StratifiedKFold(5, shuffle=True, random_state=0))
comparison = pd.DataFrame(
    {
        "ECE, shifted folds": -shifted.cv_results_["mean_test_ece"],
        "ECE, shuffled folds": -in_distribution.cv_results_["mean_test_ece"],
    },
    index=candidates,
).round(3)
print(comparison)
print("chosen under the shift:    ", candidates[shifted.best_index_])
print("chosen with shuffled folds:", candidates[in_distribution.best_index_])
