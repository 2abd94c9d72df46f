"""
==================================================
Evaluating accuracy and calibration under shift
==================================================

A shuffled K-fold estimates how a model does on data like its training data. Deployed
models meet other data: another hospital, a later month, a population with another
class balance. The splitters of :mod:`skmoe.model_selection` put such a shift between
the training and the test folds, so that the same ``cross_validate`` call measures
what happens then. This example compares a logistic regression with a soft-routed
:class:`~skmoe.MixtureOfExpertsClassifier` on accuracy and on the expected calibration
error (ECE) under domain, covariate and label shift, and ends with the population on
which soft routing provably loses its calibration.
"""

# %%
# Data from several domains
# -------------------------
# :func:`~skmoe.datasets.make_shifted_classification` draws four domains; domain 0
# is the source and the others are shifted by a growing amount of covariate shift
# (the inputs move, ``P(y | x)`` stays).
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_validate

from skmoe import MixtureOfExpertsClassifier
from skmoe.datasets import make_routing_shift, make_shifted_classification
from skmoe.metrics import neg_expected_calibration_error_scorer
from skmoe.model_selection import (
    CovariateShiftSplit,
    LabelShiftSplit,
    LeaveOneDomainOut,
)

X, y, domains = make_shifted_classification(
    1200, n_features=4, n_domains=4, shift="covariate", random_state=0
)
models = {
    "logistic regression": LogisticRegression(),
    "soft MoE, 3 experts": MixtureOfExpertsClassifier(
        n_experts=3, init="pca", random_state=0
    ),
}
scoring = {"accuracy": "accuracy", "ece": neg_expected_calibration_error_scorer}


def evaluate(cv, X, y, groups=None):
    """Mean accuracy and ECE of every model over the splits of ``cv``."""
    rows = {}
    for name, model in models.items():
        scores = cross_validate(model, X, y, cv=cv, groups=groups, scoring=scoring)
        rows[name] = {
            "accuracy": scores["test_accuracy"].mean(),
            "ECE": -scores["test_ece"].mean(),
        }
    return pd.DataFrame(rows).T.round(3)


# %%
# A shuffled K-fold mixes the domains in every fold; leave-one-domain-out tests each
# domain with a model that has never seen it. The second is the honest estimate for
# a new domain.
print("Shuffled 3-fold:")
print(evaluate(KFold(3, shuffle=True, random_state=0), X, y))
print("\nLeave one domain out:")
print(evaluate(LeaveOneDomainOut(), X, y, groups=domains))

# %%
# Covariate shift of growing severity
# -----------------------------------
# Within one data set, :class:`~skmoe.model_selection.CovariateShiftSplit` cuts the
# folds along a direction (here the first principal component). ``severity=0`` is a
# shuffled K-fold, ``severity=1`` makes each test fold a region the training set does
# not cover, so that the models extrapolate. On the two moons, where one linear model
# cannot follow the boundary and three linear experts can, the mixture wins in
# distribution; cut into disjoint regions, it extrapolates its local boundaries with
# confidence, and its calibration error grows far more than that of the plain
# logistic regression.
from sklearn.datasets import make_moons

X_moons, y_moons = make_moons(900, noise=0.25, random_state=0)
severities = [0.0, 0.5, 1.0]
by_severity = {
    severity: evaluate(
        CovariateShiftSplit(n_splits=3, severity=severity, random_state=0),
        X_moons,
        y_moons,
    )
    for severity in severities
}

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for metric, ax in zip(["accuracy", "ECE"], axes, strict=True):
    for name in models:
        ax.plot(
            severities,
            [by_severity[s].loc[name, metric] for s in severities],
            marker="o",
            label=name,
        )
    ax.set_xlabel("severity of the covariate-shift split")
    ax.set_title(f"{metric}, mean over 3 folds")
axes[0].legend()
fig.tight_layout()

# %%
# Label shift
# -----------
# :class:`~skmoe.model_selection.LabelShiftSplit` draws the class proportions of each
# test fold from a Dirichlet distribution: a large ``alpha`` keeps them near uniform,
# a small one concentrates them on one class. A model trained on balanced data then
# over-predicts the rare class, and its calibration suffers more than its accuracy.
X_source, y_source = X[domains == 0], y[domains == 0]
for alpha in [100.0, 0.3]:
    print(f"\nLabel shift, alpha={alpha}:")
    print(
        evaluate(
            LabelShiftSplit(n_splits=3, alpha=alpha, test_size=0.3, random_state=0),
            X_source,
            y_source,
        )
    )

# %%
# Why routing matters: the exact counterexample
# ---------------------------------------------
# :func:`~skmoe.datasets.make_routing_shift` builds a finite population on which a
# two-expert mixture is known exactly. The soft mixture predicts the same probability
# on two cells whose outcomes differ, and is calibrated only because the source
# weighs them equally. Hard routing sends each cell to an expert that is calibrated
# there, and stays calibrated whatever the cells' weights become.
population = make_routing_shift()
print(
    pd.DataFrame(
        {
            distribution: {
                routing: population.calibration_error(
                    prediction, distribution=distribution
                )
                for routing, prediction in [
                    ("soft routing", population.mixture_proba),
                    ("hard routing", population.routed_proba),
                ]
            }
            for distribution in ("source", "target")
        }
    ).round(3)
)

# %%
# The same cross-validation tools apply to real data that ships with installed
# packages: :func:`~skmoe.datasets.load_flights` (domains: airport and month),
# :func:`~skmoe.datasets.load_mpls_stops` (police precinct and month) and
# :func:`~skmoe.datasets.load_penguins` (island), with ``pip install "skmoe[data]"``.
