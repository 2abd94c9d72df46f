"""Information criteria of a fitted mixture: its log-likelihood and its parameters.

BIC, AIC and ICL choose the number of experts as statisticians do with flexmix's
``stepFlexmix`` and scikit-learn's ``GaussianMixture``: fit ``k = 1..K`` and keep the
smallest criterion. This module counts the parameters a fitted mixture estimated,
component by component, and says what it cannot count instead of guessing.

What is counted (the nominal number of free parameters, as flexmix counts them):

- the softmax gate over ``K`` experts: ``(K - 1) (d + 1)`` (one row of the softmax is
  redundant: adding the same vector to every row changes nothing), none for ``K = 1``;
- a logistic expert over ``C`` classes: ``(C - 1) (d + 1)`` coefficients and
  intercepts (``d`` without intercept), so ``d + 1`` for a binary one; an expert whose
  routed view held one class predicts it with certainty and estimates nothing;
- a linear regression expert: its coefficients, its intercept and its noise scale;
  a GLM expert (``PoissonRegressor``, ``GammaRegressor``, ``TweedieRegressor``) its
  coefficients and intercept, plus its dispersion under a Gamma or Tweedie likelihood
  (a Poisson expert has none);
- an expert that is a Pipeline: the parameters of its final step (a column selection
  or a scaler transforms ``X``, which the likelihood of ``y`` given ``X`` conditions
  on).

Penalised experts (``LogisticRegression``'s ``C``, ``Ridge``'s ``alpha``) and the
L2-penalised gate are counted like unpenalised ones: their effective degrees of
freedom are fewer, so the count is an upper bound and the criteria lean towards fewer
experts. Experts of other kinds (trees, neighbours) have no parameter count that BIC
could use; they get a ``ValueError`` that says so.
"""

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from skmoe.gating import SoftmaxGate

# What to compare experts without a parameter count by instead. The classifier has
# scikit-learn's log-loss scorer; the regressor's likelihood is not a scikit-learn
# score but its own log_likelihood (score_samples means a density of X there).
_HELD_OUT_CLASSIFIER = (
    "Compare other experts by held-out log loss instead: "
    "cross_val_score(mixture, X, y, scoring='neg_log_loss')."
)
_HELD_OUT_REGRESSOR = (
    "Compare other experts by held-out log-likelihood instead: the mean of "
    "mixture.log_likelihood(X_test, y_test), higher is better."
)


def _linear_parameters(estimator, name, held_out=""):
    """Free coefficients and intercepts of a fitted linear model."""
    while isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        raise ValueError(
            f"Cannot count the parameters of {name}={estimator!r}: information "
            "criteria need experts with a parameter count (linear models with coef_, "
            f"such as LogisticRegression, Ridge or LinearRegression). {held_out}"
            .rstrip()
        )
    coef = np.atleast_2d(coef)
    n_outputs, n_features = coef.shape
    with_intercept = hasattr(estimator, "intercept_") and bool(
        estimator.get_params().get("fit_intercept", True)
    )
    return n_outputs * (n_features + int(with_intercept))


def _classifier_expert_parameters(expert, name):
    if isinstance(expert, DummyClassifier):
        # an expert whose routed view held one class predicts it with certainty
        return int(np.asarray(expert.classes_).shape[0]) - 1
    n_classes = np.asarray(getattr(expert, "classes_", [])).shape[0]
    parameters = _linear_parameters(expert, name, _HELD_OUT_CLASSIFIER)
    if n_classes > 2:
        # a multinomial softmax: one row of coefficients is redundant
        parameters -= parameters // n_classes
    return parameters


def _gate_parameters(gate, n_experts):
    if n_experts == 1:
        return 0
    if isinstance(gate, SoftmaxGate) or hasattr(gate, "coef_"):
        parameters = _linear_parameters(gate, "gate")
        if np.atleast_2d(gate.coef_).shape[0] > 1:
            parameters -= parameters // np.atleast_2d(gate.coef_).shape[0]
        return parameters
    raise ValueError(
        f"Cannot count the parameters of gate={gate!r}: information criteria need a "
        "linear gate (the default SoftmaxGate, or a classifier with coef_)."
    )


def count_parameters(mixture):
    """Number of free parameters a fitted mixture estimated.

    Parameters
    ----------
    mixture : fitted MixtureOfExpertsClassifier or MixtureOfExpertsRegressor

    Returns
    -------
    n_parameters : int
    """
    if getattr(mixture, "expert_calibration", None) is not None:
        raise ValueError(
            "Information criteria count the parameters of the likelihood the mixture "
            "was fitted by; expert_calibration refits the experts' probabilities on "
            f"held-out folds afterwards (expert_calibration="
            f"{mixture.expert_calibration!r}). Compare candidates with "
            "expert_calibration=None, or by held-out log-likelihood."
        )
    n_experts = len(mixture.experts_)
    total = _gate_parameters(mixture.gate_, n_experts)
    # the regressor's likelihood: Gaussian, Gamma and Tweedie estimate a noise scale
    # or a dispersion per expert, Poisson none
    family = getattr(mixture, "likelihood_", None)
    for k, expert in enumerate(mixture.experts_):
        name = f"experts_[{k}]"
        if family is not None:
            total += _linear_parameters(expert, name, _HELD_OUT_REGRESSOR) + int(
                family != "poisson"
            )
        else:
            total += _classifier_expert_parameters(expert, name)
    return int(total)
