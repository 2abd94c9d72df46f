"""``solver="auto"``, the classifier's default: EM, or minibatch Adam on large data.

EM refits every expert and the gate at each iteration, and on many rows with
linear experts it is both slow and slow to converge: on a known mixture of 8
logistic experts (20 features, 3 classes, held-out Bayes log loss 0.21), EM on
100,000 rows stopped at a held-out log loss of 0.33 after 1,539 times one
``LogisticRegression`` fit, and on 200,000 rows was at 0.86 after 30 iterations
(657 times), where minibatch AdamW (``solver="adam"``) trains the same model to
0.22-0.23 in 16-29 times (``benchmarks/README_time_to_good_model.md``).
``"auto"`` picks ``"adam"`` where it trains the same model as EM and is measured
to be faster and no worse, and EM everywhere else:

- at least :data:`MIN_SAMPLES` (100,000) rows, dense ``X``;
- soft routing, the default gate or a :class:`~skmoe.gating.SoftmaxGate`, and
  ``LogisticRegression`` experts with an L2 penalty (or none) and no
  ``class_weight`` (the model ``solver="adam"`` trains);
- nothing that only EM does, or does differently: no ``reweighting``,
  ``gate_features``, ``min_prior`` or ``hidden_layer_sizes``.

Adam then runs at most ``max_iter`` epochs and at most about :data:`STEP_BUDGET`
minibatch steps (whole epochs, at least one): its progress is counted in steps,
so the cost of a fit stays near ``STEP_BUDGET * batch_size`` rows whatever the
number of rows, while EM's and a ``LogisticRegression``'s grow with it.

From one start, Adam lands in a poor basin about one time in four on that known
mixture (held-out log loss 0.34-0.40 against 0.22; the experts' priors look
normal: it is a wrong split of the regions, not a starved expert). So ``"auto"``
races :data:`N_STARTS` starts (the fit's ``init`` drawn again) for about
:data:`SCREEN_STEPS` steps each, on the fit's own learning-rate schedule, and
goes on from the one with the lowest training loss
(:func:`skmoe.solvers._stochastic._screen_starts`): over 24 seeds at 200,000 rows
no fit ended in a poor basin, against 6 of 24 from one start, at 20-22 times one
``LogisticRegression`` fit against 11-12 (``benchmarks/auto_reliability.py``,
``benchmarks/README_time_to_good_model.md`` section 6). The race runs inside
each of ``n_init`` starts; it is skipped for an ``init`` given as an array (the
user chose the start) and with ``early_stopping`` (whose validation scores and
best iterate belong to one run).
"""

import scipy.sparse as sp
from sklearn.base import is_regressor

from skmoe.solvers import _stochastic

# Fewest rows for which "auto" trains by Adam, measured on the known mixture of 8
# logistic experts (benchmarks/README_time_to_good_model.md): at 50,000 rows EM
# converged to a held-out log loss of 0.224 (in 1,167 LogisticRegression fits)
# where Adam's step budget gave 0.234-0.237 and once 0.421: EM stays. At 100,000,
# EM stopped at 0.332 (64 iterations, 1,539 fits) and Adam gave 0.225-0.227 in
# 27-29 fits. The bundled data sets of benchmarks/bench_quality.py are far below.
MIN_SAMPLES = 100_000
# Minibatch steps of an "auto" Adam fit: on the known mixture of 8 logistic
# experts, 7 epochs of 200,000 rows (10,900 steps of 128 rows) reached a held-out
# log loss of 0.222-0.225 (Bayes 0.211) over three seeds in 16-18 times one
# LogisticRegression fit, 13 epochs of 100,000 rows 0.225-0.227 in 27-29 times;
# 15,000 steps gave 0.218-0.219 but 39 times at 100,000 rows, over the 30 of
# issue 13 (benchmarks/README_time_to_good_model.md).
STEP_BUDGET = 10_000
# Starts raced for about SCREEN_STEPS minibatch steps each before the best goes on
# (skmoe.solvers._stochastic._screen_starts). On the known mixture at 200,000 rows
# (benchmarks/README_time_to_good_model.md, section 6), 12 seeds each: 1,500 steps
# do not yet tell a poor basin apart (1-2 poor fits of 12 with 2 or 3 starts);
# after 3,000 steps 2 starts left none at 200,000 rows but 1 at 100,000, 3 starts
# none at either, at 20 times one LogisticRegression fit at 200,000 rows (median,
# against 11 from one start; 35 against 21 at 100,000).
N_STARTS = 3
SCREEN_STEPS = 3_000


def choose(mixture, X):
    """The solver ``solver="auto"`` trains ``mixture`` on ``X`` with.

    Parameters
    ----------
    mixture : MixtureOfExpertsClassifier
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The validated training data.

    Returns
    -------
    solver : {"adam", "em"}
    """
    if X.shape[0] < MIN_SAMPLES or sp.issparse(X) or is_regressor(mixture):
        return "em"
    if (
        mixture.reweighting is not None
        or mixture.gate_features is not None
        or mixture.min_prior > 0
        or mixture.hidden_layer_sizes not in (None, ())
    ):
        return "em"
    try:
        _stochastic.check_stochastic_solver(mixture, regression=False)
    except ValueError:
        return "em"
    return "adam"


def max_epochs(mixture, n_samples):
    """Epochs of an ``"auto"`` Adam fit on ``n_samples`` rows: at most ``max_iter``,
    and whole epochs up to about :data:`STEP_BUDGET` minibatch steps."""
    steps_per_epoch = -(-n_samples // min(mixture.batch_size, n_samples))
    return min(mixture.max_iter, max(1, -(-STEP_BUDGET // steps_per_epoch)))


def check(mixture):
    """The solvers' interface (:mod:`skmoe.solvers`) for Adam chosen by ``"auto"``."""
    return _stochastic.check(mixture)


def run(mixture, X, y, weights, templates, responsibilities, init_index, random_state):
    """The solvers' interface: ``solver="adam"`` for :func:`max_epochs` epochs."""
    return _stochastic.run(
        mixture,
        X,
        y,
        weights,
        templates,
        responsibilities,
        init_index,
        random_state,
        max_iter=max_epochs(mixture, X.shape[0]),
        n_starts=N_STARTS,
        screen_steps=SCREEN_STEPS,
    )
