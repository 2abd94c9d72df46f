"""Out-of-fold log loss of hard and soft routing, and how many probabilities are zero.

Issue 14, item 3: under hard routing an expert that never saw a class used to give
it probability exactly zero. For iris, digits and the Palmer penguins (the four
measurements, complete rows), a 5-fold stratified cross-validation (shuffled, seed 0)
of ``StandardScaler`` + ``MixtureOfExpertsClassifier(n_experts=4)`` under hard and
soft routing prints the log loss of the out-of-fold probabilities
(:func:`sklearn.metrics.log_loss`, which clips zeros to machine epsilon), the number
of probabilities that are exactly zero, the samples whose true class got zero, the
smallest probability of a true class and the accuracy.

    OPENBLAS_NUM_THREADS=1 python benchmarks/hard_routing_log_loss.py
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsClassifier
from skmoe.datasets import load_penguins


def penguins():
    bunch = load_penguins(as_frame=False)
    X = np.asarray(bunch.data[:, :4], dtype=np.float64)
    complete = ~np.isnan(X).any(axis=1)
    return X[complete], bunch.target[complete]


def main():
    data = {
        "iris": load_iris(return_X_y=True),
        "digits": load_digits(return_X_y=True),
        "penguins": penguins(),
    }
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    print("| data set | routing | log loss | zero probabilities | P(true) = 0 "
          "| min P(true) | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for name, (X, y) in data.items():
        for routing in ("hard", "soft"):
            model = make_pipeline(
                StandardScaler(),
                MixtureOfExpertsClassifier(
                    n_experts=4, routing=routing, random_state=0
                ),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba")
            true_proba = proba[np.arange(y.shape[0]), y]
            print(
                f"| {name} | {routing} | {log_loss(y, proba):.4f} "
                f"| {int((proba == 0).sum())} of {proba.size} "
                f"| {int((true_proba == 0).sum())} | {true_proba.min():.2e} "
                f"| {np.mean(proba.argmax(axis=1) == y):.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
