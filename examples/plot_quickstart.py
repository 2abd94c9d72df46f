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
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsClassifier
from skmoe.metrics import expected_calibration_error

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
# Fit and compare
# ---------------
# The top-label ECE takes the confidence of a prediction to be its top probability and
# averages the gap between confidence and accuracy over 15 equal-width confidence bins
# (:func:`skmoe.metrics.expected_calibration_error`).
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
            expected_calibration_error(y_test, proba, labels=classes),
        )
    )

print(f"{'model':<22}{'accuracy':>10}{'log loss':>10}{'ECE':>8}")
for name, accuracy, loss, ece in rows:
    print(f"{name:<22}{accuracy:>10.4f}{loss:>10.4f}{ece:>8.4f}")
