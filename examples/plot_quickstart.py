"""
==========
Quickstart
==========

Fit a Mixture-of-Experts classifier with soft and with hard routing on the handwritten
digits that ship with scikit-learn, and compare it with a single logistic regression on
held-out data: accuracy, log loss, and the top-label expected calibration error (ECE)
with 15 equal-width bins.
"""

# %%
# Data and models
# ---------------
# Every model is a pipeline that standardises the pixels first. The mixtures use four
# logistic-regression experts and the built-in softmax gate.
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)

expert = LogisticRegression(max_iter=1000)
models = {
    "LogisticRegression": expert,
    "MoE, soft routing": MixtureOfExpertsClassifier(
        expert, n_experts=4, routing="soft", random_state=0
    ),
    "MoE, hard routing": MixtureOfExpertsClassifier(
        expert, n_experts=4, routing="hard", random_state=0
    ),
}


# %%
# Top-label ECE
# -------------
# The confidence of a prediction is its top probability; the ECE is the weighted mean
# gap between confidence and accuracy over 15 equal-width confidence bins, assigned as
# ``numpy.histogram`` assigns them.
def top_label_ece(y_true, proba, classes, n_bins=15):
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=confidence - correct, minlength=n_bins)
    return float(np.abs(gap).sum() / counts.sum())


# %%
# Fit and compare
# ---------------
rows = []
for name, model in models.items():
    pipeline = make_pipeline(StandardScaler(), model).fit(X_train, y_train)
    proba = pipeline.predict_proba(X_test)
    classes = pipeline.classes_
    rows.append(
        (
            name,
            accuracy_score(y_test, classes[proba.argmax(axis=1)]),
            log_loss(y_test, proba, labels=classes),
            top_label_ece(y_test, proba, classes),
        )
    )

print(f"{'model':<22}{'accuracy':>10}{'log loss':>10}{'ECE':>8}")
for name, accuracy, loss, ece in rows:
    print(f"{name:<22}{accuracy:>10.4f}{loss:>10.4f}{ece:>8.4f}")
