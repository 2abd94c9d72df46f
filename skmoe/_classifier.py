"""MixtureOfExpertsClassifier: a gate routes each sample to classifier experts."""

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
)
from sklearn.utils.validation import validate_data

from skmoe._base import _LOG_TINY, SPARSE_FORMATS, BaseMixtureOfExperts
from skmoe._validation import explained_input_errors
from skmoe.calibration import ProbabilityCalibrator
from skmoe.solvers import _auto, _em, _gradient, _stochastic
from skmoe.solvers._stochastic import (
    STOCHASTIC_PARAMETER_CONSTRAINTS,
    check_stochastic_solver,
    forget_adam_fit,
    hidden_size,
    partial_fit_stochastic,
)

# Folds of the cross-fitting behind expert_calibration.
_CALIBRATION_FOLDS = 5


def _fit_expert_calibrators(method, out_of_fold, top, y, sample_weight):
    """One calibration map per expert, fitted on the samples it is the top expert for.

    ``out_of_fold`` holds the experts' cross-fitted probabilities (n, K, C), filled
    at least on every expert's region; ``top`` the expert of largest routing weight
    of each sample at prediction. An expert that is top for no sample gets None.
    """
    calibrators = []
    for k in range(out_of_fold.shape[1]):
        region = np.flatnonzero((top == k) & (sample_weight > 0))
        if region.size == 0:
            calibrators.append(None)  # never the top expert: nothing to calibrate on
            continue
        calibrators.append(
            ProbabilityCalibrator(method=method).fit(
                out_of_fold[region, k], y[region], sample_weight=sample_weight[region]
            )
        )
    return calibrators


# Weight, in samples, of the class prior that every expert's class frequencies are
# smoothed towards (a Dirichlet prior of total concentration one).
_CLASS_PRIOR_WEIGHT = 1.0


def _unseen_class_proba(experts, y, expert_weights, weights, n_classes):
    """Probability each expert gives to each class it never saw, shape (K, C).

    An expert fitted on a routed view that holds only some classes predicts the
    others with probability zero, which makes the log loss infinite for the
    samples of those classes that the gate sends it. Its region's class frequencies
    are instead estimated as the posterior predictive of a Dirichlet prior centred
    on the training class frequencies ``pi`` and worth ``_CLASS_PRIOR_WEIGHT``
    samples: a class ``c`` gets ``(n_kc + pi_c) / (n_k + 1)``, with ``n_kc`` the
    weight of class ``c`` among the expert's training samples (a sample weight
    counts as that many samples, as everywhere in fit) and ``n_k`` their total.
    The classes the expert never saw share that mass (Laplace's rule of
    succession, generalised to the class prior), and the expert's own
    probabilities are scaled by what is left. The mass vanishes as the routed view
    grows, favours the common classes, and leaves an expert that saw every class
    unchanged (its row is zero).
    """
    class_weights = np.bincount(y, weights, minlength=n_classes)
    prior = class_weights / class_weights.sum()
    unseen_proba = np.zeros((len(experts), n_classes))
    for k, expert in enumerate(experts):
        seen = np.zeros(n_classes, dtype=bool)
        seen[np.asarray(expert.classes_, dtype=np.intp)] = True
        if seen.all():
            continue
        counts = np.bincount(y, expert_weights[:, k], minlength=n_classes)
        posterior = (counts + _CLASS_PRIOR_WEIGHT * prior) / (
            counts.sum() + _CLASS_PRIOR_WEIGHT
        )
        unseen_proba[k, ~seen] = posterior[~seen]
    return unseen_proba


def _aligned_proba(expert, X, n_classes):
    """``expert.predict_proba(X)`` with one column per class of the mixture.

    An expert fitted on a routed view may have seen only some classes; the classes it
    never saw get probability zero.
    """
    proba = expert.predict_proba(X)
    seen = expert.classes_
    if seen.shape[0] == n_classes:
        return proba
    aligned = np.zeros((X.shape[0], n_classes))
    aligned[:, seen.astype(np.intp)] = proba
    return aligned


# The module of skmoe.solvers behind each named solver
_SOLVERS = {"em": _em, "gradient": _gradient, "adam": _stochastic}


def _uses_adam(mixture):
    """``partial_fit`` exists with ``solver="adam"`` only."""
    return mixture.solver == "adam"


class MixtureOfExpertsClassifier(ClassifierMixin, BaseMixtureOfExperts):
    """Mixture-of-Experts classifier trained by EM, hard EM, top-k EM or gradient.

    A gate ``r(x)`` (by default a multinomial logistic regression,
    :class:`~skmoe.gating.SoftmaxGate`) weighs ``K`` classifier experts ``p_k(y | x)``.
    ``routing="soft"`` predicts with the mixture ``sum_k r_k(x) p_k(y | x)`` and is
    trained by EM; ``routing="hard"`` predicts with the single expert the gate selects
    (only that expert is evaluated) and is trained by hard (classification) EM;
    ``routing="topk"`` predicts with the renormalised mixture of the ``top_k`` experts
    the gate ranks highest.

    EM alternates an E-step, which computes in log space the responsibilities
    ``h_ik ∝ r_k(x_i) p_k(y_i | x_i)``, and an M-step, which refits expert ``k`` with
    ``sample_weight = w_i h_ik`` (``w`` the user's sample weights) and the gate on the
    soft targets ``h`` with weights ``w``. Hard EM replaces ``h`` by the indicator of
    its argmax; an expert that loses all its samples is re-seeded with the samples the
    mixture explains worst. ``solver="gradient"`` trains a softmax gate and logistic
    experts together instead, by L-BFGS on the mixture's likelihood or on its exact
    tilted (adversarial) objective, and ``solver="adam"`` by minibatch AdamW; the
    default, ``solver="auto"``, trains by EM, and by AdamW on large dense data
    with logistic experts (see ``solver``).

    Parameters
    ----------
    expert : estimator or list of estimators, default=None
        Classifier cloned once per expert, or a list of classifiers for heterogeneous
        experts. Each needs ``predict_proba``, and a ``fit`` that accepts
        ``sample_weight`` unless ``routing="hard"`` and no ``sample_weight`` is
        given. ``None`` means ``LogisticRegression()``, made at fit time: to tune
        its parameters (``expert__C`` in a grid search) pass
        ``expert=LogisticRegression()`` explicitly. An expert whose routed view
        holds a single class is replaced by a
        :class:`~sklearn.dummy.DummyClassifier` predicting that class; under hard
        and top-k routing the classes an expert never saw keep a small probability
        (``unseen_class_proba_``).
    n_experts : int, default=None
        Number of experts. ``None`` means ``len(expert)`` for a list, else 2. At
        most the number of samples of positive weight (a ``ValueError`` otherwise,
        as for :class:`~sklearn.mixture.GaussianMixture`'s ``n_components``).
    gate : classifier, default=None
        The gate. ``None`` means ``SoftmaxGate(max_iter=20)``
        (:class:`~skmoe.gating.SoftmaxGate`): each M-step takes at most 20 L-BFGS
        iterations from the previous solution, since EM needs a gate that improves,
        not its optimum. A ``SoftmaxGate`` given here is used with its own
        ``max_iter``. Any classifier
        with ``predict_proba`` whose ``fit`` accepts ``sample_weight`` works; it learns
        the soft targets from one weighted copy of each sample per expert.
    routing : {"soft", "hard", "topk"}, default="soft"
        How the experts are combined, in training and at prediction.
    top_k : int, default=2
        Number of experts per sample with ``routing="topk"``; at most ``n_experts``.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation; with
        ``solver="gradient"``, of L-BFGS iterations (warm-up and tilted phase
        together), of which joint training usually needs several hundred.
    tol : float, default=1e-4
        EM stops when an M-step increases its objective (``lower_bound_``, a mean
        per unit of sample weight) by less than ``tol``, and, with
        ``reweighting``, the adversary's move changes it by less than ``tol`` too;
        a decrease is never taken for convergence (and an M-step that decreases it
        beyond rounding raises a ``ConvergenceWarning``). With
        ``solver="gradient"``, L-BFGS stops when no component of the objective's
        gradient (the objective being a mean over samples) exceeds ``tol``.
    n_init : int, default=1
        Number of initialisations (flexmix's ``nrep``), each a full EM run from its
        own start (under ``init="auto"``, from the best of its own short runs);
        the one with the best final objective is kept. They run in parallel with
        ``n_jobs``.
    init : {"kmeans", "auto", "pca", "random", "random_partition"} or \
            array-like, default="kmeans"
        The start of EM. ``"auto"`` (under EM): short EM runs (at most 15
        iterations each, on at most 10,000 rows drawn at random) from the
        ``"kmeans"`` start and from four ``"random_partition"`` starts, and EM
        continues from the best of them (the em-EM strategy of Biernacki et al.,
        2003; flexmix's ``tol.em``), the default of
        :class:`MixtureOfExpertsRegressor`; with the joint solvers it is
        ``"kmeans"``. The default here is ``"kmeans"``: in
        ``benchmarks/starts.py`` ``"auto"`` gave k-means's optimum on breast
        cancer at 2.8 times its cost, and found the best optimum of a synthetic
        multinomial mixture from 5 seeds in 20 against 2 (:ref:`flexmix`). The
        named starts are partitions
        of the samples into experts (for an unpenalised gate,
        ``SoftmaxGate(C=np.inf)``, under soft and top-k routing, softened to 90%
        on the sample's expert and the rest spread evenly, so that the first gate
        fit stays finite).
        ``"kmeans"``: the clusters of k-means on ``X``; ``"pca"``: ``n_experts``
        slabs of equal weight along the first (weighted) principal component, a
        deterministic start under which integer sample weights are exactly
        equivalent to repeated rows; ``"random"``: each sample to the nearest of
        ``n_experts`` samples drawn at random; ``"random_partition"``: each sample
        to an expert drawn uniformly at random (flexmix's start), which suits
        experts that overlap in ``X`` (mixtures of regressions) and explores more
        across ``n_init`` restarts. An array gives the start itself (flexmix's
        ``cluster=``): integer expert labels of shape (n_samples,) or
        responsibilities of shape (n_samples, n_experts), used as given (rows
        normalised); then ``n_init`` must be 1. A start that leaves an expert
        without weight (a random partition of a few rows, slabs of tied rows,
        labels that skip an expert) gives it rows of the others, drawn at random,
        as EM re-seeds an expert that loses all its rows: every expert is fitted
        on data.
    warm_start : bool, default=False
        Continue from the fitted model when fit is called again (then ``n_init`` is
        ignored): the first E-step uses the fitted gate and experts. The fitted
        state carries over, the current parameters always apply: the gate takes
        those of ``gate``, and each expert is refitted as a clone of the current
        ``expert`` (after ``set_params(expert__C=100.0)``, with ``C=100``); a linear
        or neural-network expert whose parameters did not change goes on from its
        coefficients. A change the fitted state cannot follow raises a
        ``ValueError`` naming the parameter and both values: other columns in ``X``
        (``n_features_in_``), other classes in ``y``, another ``n_experts``,
        experts or a gate of another class, other ``gate_features``, another
        hidden layer (``hidden_layer_sizes`` under ``solver="adam"``).
        scikit-learn's warm starts refuse such changes too (``MLPClassifier``
        other classes or columns, forests and gradient boosting fewer
        estimators), and a cold start in their place would hide that
        ``warm_start`` did nothing; ``warm_start=False`` fits afresh.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, and the ``random_state`` of experts and gate that
        have one left at ``None`` (as scikit-learn's ensembles do), so that an int
        makes fit reproducible.
    verbose : int, default=0
        Print the likelihood at each iteration when positive.
    n_jobs : int, default=None
        Experts fitted in parallel through joblib (``None``: 1 unless in a
        :func:`joblib.parallel_backend` context; ``-1``: all processors), and
        the ``n_init`` starts when ``n_init > 1`` (each on its own seed drawn
        from ``random_state``: the fit is the same for every ``n_jobs`` and
        joblib backend, Dask's and Ray's included).
    reweighting : {"adversarial", "adversarial_filtered", "group_dro"}, \
            AdversarialReweighting, GroupDRO or None, default=None
        Train against adversarial sample weights (KL-DRO): after a warm-up, each
        M-step refits expert ``k`` with ``sample_weight = W q_i h_ik`` and the gate
        with ``W q_i`` (``solver="gradient"`` minimises the tilted objective
        itself; see ``solver``), where ``q`` are the weights
        :class:`~skmoe.reweighting.AdversarialReweighting` computes from the
        per-sample losses of the current mixture, ``L_i = -log sum_k r_k(x_i)
        p_k(y_i | x_i)`` (for hard routing, ``-log p_s(y_i | x_i)`` of the selected
        expert ``s``), tilting the user's ``sample_weight`` ``w`` (``q ∝ w exp(eta L)``
        inside minibatches, with the default divergence bound), and ``W = sum w``.
        ``"adversarial"`` means ``AdversarialReweighting()``,
        ``"adversarial_filtered"`` ``AdversarialReweighting(filtered=True)``, whose
        routing-relevant samples are those with mixture regret
        ``L_i - min_k(-log p_k(y_i | x_i)) > 1e-6`` or expert disagreement
        ``sum_k r_k(x_i) ||p_k(x_i) - f(x_i)||^2 > 0.01``. ``None``: plain EM.
        ``"group_dro"`` means :class:`~skmoe.reweighting.GroupDRO` with its
        defaults: the weights are spread over the ``groups`` given to :meth:`fit`
        by exponentiated-gradient steps on each group's mean loss (Group DRO), and
        evenly inside a group. Needs experts whose ``fit`` accepts
        ``sample_weight``.
    min_prior : float in [0, 1), default=0.0
        Drop an expert whose prior (its gate weight averaged over the training
        data) falls below ``min_prior``, as flexmix's ``minprior`` does: after EM
        converges, the experts below it are removed and EM goes on from the
        posteriors of the others, until every prior is at least ``min_prior``
        (when every prior falls below it, the largest expert stays and carries
        them all; ``kept_experts_`` says which remain; flexmix checks during EM, skmoe
        between runs, so an expert is dropped once its run has settled). The
        default ``0`` keeps every expert: the mixture has the ``n_experts`` asked
        for (what a grid search over ``n_experts`` compares), and experts that
        vanish are reported instead, in ``expert_priors_`` and by a warning below
        a prior of 0.001. Hard and top-k EM re-seed an expert that loses every
        sample either way. Only with ``solver="em"``.
    gate_features : array-like of int, str or bool, default=None
        The columns of ``X`` the gate sees (flexmix's concomitant variables,
        ``concomitant = FLXPmultinom(~ z)``): column indices, column names (for a
        DataFrame) or a boolean mask; ``None``: every column. The experts see every
        column; to give them fewer, make each expert a Pipeline that selects them
        (``make_pipeline(ColumnTransformer([("x", "passthrough", [1])]),
        LogisticRegression())``). Only with ``solver="em"``.
    expert_calibration : {"temperature", "sigmoid", "isotonic"} or None, \
            default=None
        Calibrate every expert on its routed view after EM, with cross-fitting: the
        samples are cut into 5 folds; for each fold and expert a fresh copy of the
        expert is fitted on the other folds with the weights the final expert was
        fitted with (its responsibilities), and predicts the fold. A
        :class:`~skmoe.calibration.ProbabilityCalibrator` per expert is then fitted
        on these out-of-fold probabilities over the expert's *region*: the samples
        it has the largest routing weight for (under hard routing, the samples the
        gate sends to it), with the user's sample weights. The final expert is the
        one fitted on all its data; its predictions go through the map. Under soft
        and top-k routing the maps calibrate each expert where it leads, not the
        mixture. On seven tasks without shift
        (``benchmarks/expert_calibration_routing.py``) they lowered the mixture's
        ECE on average under every routing, and raised it by more than 0.005 in 4
        to 10 runs of 21; see :ref:`calibration_under_shift`. ``None``: no
        calibration. With
        ``solver="gradient"`` the copies are fitted by ``LogisticRegression.fit``
        with the final posterior responsibilities as weights (EM's M-step, not joint
        training).
    solver : {"auto", "em", "gradient", "adam"}, default="auto"
        How the mixture is trained. ``"auto"`` (``solver_`` says which it took):
        ``"adam"`` for at most ``max_iter`` epochs and about 10,000 minibatch
        steps (whole epochs: 7 of 200,000 rows in minibatches of 128, 13 of
        100,000), after racing 3 starts for about 3,000 steps each and going
        on from the best, when the data are dense with at least 100,000 rows and
        the model is one ``"adam"`` trains as EM would: soft routing, the softmax gate,
        ``LogisticRegression`` experts with an L2 penalty (or none) and no
        ``class_weight``, and no ``reweighting``, ``gate_features``,
        ``min_prior`` or ``hidden_layer_sizes``; ``"em"`` otherwise, and so on
        every data set of fewer than 100,000 rows. On a known mixture of 8
        logistic experts (20 features, 3 classes, held-out Bayes log loss 0.21)
        EM on 100,000 rows stopped at a held-out log loss of 0.33 after 1,539
        times one ``LogisticRegression`` fit, where ``"auto"`` reaches 0.22-0.23
        in every one of 24 seeds at 200,000 rows, in 20-22 times (one start
        instead of the race ended in a poorer optimum, 0.34-0.40, in 6 of 24)
        (``benchmarks/README_time_to_good_model.md``). ``"em"``: EM
        (soft, hard or top-k as
        ``routing`` says), with any experts whose ``fit`` accepts
        ``sample_weight``. ``"gradient"``: the gate and the experts are trained
        jointly by L-BFGS on all their coefficients at once; it needs
        ``routing="soft"``, ``gate=None`` or a
        :class:`~skmoe.gating.SoftmaxGate`, and ``LogisticRegression`` experts
        with an L2 penalty (or none) and no ``class_weight``. The objective is the
        weighted mean loss ``sum_i (w_i / W) L_i``, ``L_i = -log sum_k r_k(x_i)
        p_k(y_i | x_i)`` computed by log-sum-exp, plus the experts' and the gate's
        L2 penalties ``||coef||^2 / (2 C)`` divided by ``W = sum w``: the same
        penalised likelihood as EM's M-steps, whose experts and gate add the
        penalty to a weighted sum of losses. Training starts from one M-step of
        EM on the initial responsibilities (so ``init``, ``n_init``,
        ``random_state`` and ``warm_start`` keep their meaning); the experts'
        and the gate's own ``max_iter`` and ``tol`` are not used. With
        ``reweighting``, after the warm-up the objective is the exact tilted one
        inside minibatches, differentiated as
        :class:`~skmoe.reweighting.AdversarialReweighting`'s ``gradient`` says;
        each of at most 3 rounds fixes the minibatch partition, the relevant sets
        and the bounded ``eta'`` of each batch at its start (so that L-BFGS sees
        one smooth objective), the next round redraws them after convergence.
        ``experts_`` are then fitted ``LogisticRegression`` objects and ``gate_``
        a fitted ``SoftmaxGate``. ``"adam"``: the same model (and, with
        ``hidden_layer_sizes``, a shared hidden layer feeding the gate and the
        experts) trained jointly by minibatch AdamW on the weighted mean loss
        plus the same L2 penalties (added to the gradient: ``1 / (C W)`` of each
        expert and of the gate per unit of coefficient); same requirements as
        ``"gradient"``. ``max_iter`` counts epochs; ``tol`` and
        ``n_iter_no_change`` stop training as in
        :class:`~sklearn.neural_network.MLPClassifier` (on the mean training
        objective of an epoch, or on the validation log-likelihood with
        ``early_stopping``); with ``learning_rate="cosine"`` the fit also counts
        as converged when the schedule ends (its rate is then zero). The start
        is cheap, not an EM step: the gate is the posterior of isotropic
        Gaussians centred at ``init``'s clusters (in the hidden features when
        there is a hidden layer, drawn at random as in sklearn's MLP), each
        expert starts at its cluster's log class
        frequencies; ``n_init`` restarts keep the best training likelihood. With
        ``reweighting``, after ``warmup * max_iter`` untilted epochs (or as soon
        as the untilted objective stops improving), every minibatch minimises
        the tilted objective inside the batch, differentiated as
        :class:`~skmoe.reweighting.AdversarialReweighting`'s ``gradient`` says
        (the reweighting's own ``batch_size`` is not used: the tilt is over the
        solver's minibatch); the ``min_ess`` bound and ``class_conditional``
        apply per batch. ``experts_`` and ``gate_`` are fitted
        ``LogisticRegression`` and ``SoftmaxGate`` objects on the features
        (``hidden_coef_``). :meth:`partial_fit` trains on chunks.
    hidden_layer_sizes : int, tuple of at most one int, or None, default=None
        With ``solver="adam"``: width of a shared hidden layer
        ``act(X @ hidden_coef_ + hidden_intercept_)`` whose features feed the gate
        and the experts (the paper's learned backbone, in small). ``None`` or
        ``()``: none; the gate and the experts see ``X``. Ignored by the other
        solvers.
    activation : {"relu", "tanh"}, default="relu"
        Activation of the hidden layer (``solver="adam"``).
    batch_size : int, default=128
        Minibatch size of ``solver="adam"`` (the authors' 128), clipped to the
        number of training samples; the adversarial tilt is normalised inside
        each minibatch.
    learning_rate_init : float, default=1e-2
        Peak learning rate of ``solver="adam"``. The authors' 1e-3 suits deep
        networks trained for many steps; on tabular data with linear experts,
        1e-2 reached the likelihood of ``solver="gradient"`` in 100 epochs where
        1e-3 did not (measured on ``make_classification`` samples).
    learning_rate : {"cosine", "constant"}, default="cosine"
        Schedule of ``solver="adam"``: ``"cosine"`` decays the rate from
        ``learning_rate_init`` to zero over ``max_iter`` epochs, step by step
        (the authors' schedule); ``"constant"`` keeps it. :meth:`partial_fit`
        always uses the constant rate, since the number of calls is unknown.
    weight_decay : float, default=0.0
        AdamW's decoupled weight decay (``theta -= lr * weight_decay * theta``
        at every step) on every weight of the hidden layer, the gate and the
        experts (not the intercepts), on top of the L2 penalties of the experts
        and the gate; the authors use 1e-4. ``solver="adam"`` only.
    early_stopping : bool, default=False
        With ``solver="adam"``, hold out ``validation_fraction`` of the training
        data (stratified), stop when its weighted mean log-likelihood has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the
        parameters of the best epoch (as sklearn's MLP). With ``reweighting``,
        the best epoch is searched among the tilted ones only (the search starts
        again when the tilt starts).
    validation_fraction : float in (0, 1), default=0.1
        Fraction of the data held out with ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` before ``solver="adam"`` stops
        (or, during the warm-up of a reweighting, starts the tilt).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    experts_ : list of estimators
        The fitted experts, without their calibration maps; their ``classes_`` index
        into ``classes_``.
    expert_calibrators_ : list of ProbabilityCalibrator or None
        The calibration map of each expert (``None`` for an expert the gate never
        selects); only with ``expert_calibration`` set.
    unseen_class_proba_ : ndarray of shape (n_experts, n_classes)
        The probability each expert gives to the classes its training view lacked
        (zero for the classes it saw, and everywhere under soft routing): the
        Dirichlet posterior predictive ``(n_kc + pi_c) / (n_k + 1)`` of the
        expert's class counts under a one-sample prior at the training class
        frequencies ``pi``. The expert's own probabilities are scaled by one minus
        the row's sum, so hard and top-k routing never predict exactly zero.
    gate_ : classifier
        The fitted gate.
    expert_priors_ : ndarray of shape (n_experts_kept,)
        Each expert's prior: its gate weight averaged over the (weighted)
        training data (flexmix's ``prior``); ``solver="em"`` and the joint
        solvers alike.
    kept_experts_ : ndarray of shape (n_experts_kept,)
        The indices (among the ``n_experts`` fitted first) of the experts left
        after ``min_prior``; all of them by default.
    n_iter_ : int
        EM iterations of the best initialisation (L-BFGS iterations with
        ``solver_="gradient"``, epochs with ``solver_="adam"``).
    converged_ : bool
        Whether the best initialisation converged.
    lower_bound_ : float
        The objective EM increases, at the end of the best initialisation: the
        weighted mean log-likelihood of the training data (for hard routing, the
        classification log-likelihood) minus the L2 penalties of a ``SoftmaxGate``
        and of L2-penalised ``LogisticRegression`` experts, ``||coef||^2 / (2 C)``
        each, divided by the total weight (EM with penalised M-steps maximises the
        penalised likelihood, while the plain one may fall). With ``reweighting``,
        the weights are those of the last M-step, ``w q``: the tilted objective
        that M-step increased. With ``solver="gradient"``, the weighted mean
        log-likelihood without the penalties. For top-k routing the likelihood is
        that of the truncated, renormalised gate the predictions use. Under top-k
        and hard routing without ``reweighting``, EM returns its best iterate: this
        is the largest entry of ``lower_bounds_``, and ``experts_`` and ``gate_``
        are that iterate's (a re-seeded empty expert can lower the objective).
    lower_bounds_ : ndarray of shape (n_iter_,)
        The objective after each iteration of the best initialisation (with
        ``solver="gradient"``, after each L-BFGS iteration, weighted as
        ``lower_bound_`` is by that iteration's weights; with ``solver="adam"``,
        minus the mean minibatch objective of each epoch, tilted after the
        warm-up). With ``solver="adam"``, ``lower_bound_`` is the plain weighted
        mean log-likelihood of all the training data at the final parameters.
    adversarial_weights_ : ndarray of shape (n_samples,)
        The weights ``w q`` the final experts and gate were fitted with, normalised
        to sum one (with ``solver="gradient"``: the weights of the final tilted
        objective at the final losses; with ``solver="adam"``: the weights the
        minibatches of the last epoch, or of the best one with early stopping,
        were tilted with, each batch holding its share of the data weight; zero
        on validation samples); only with ``reweighting``.
    effective_sample_sizes_ : ndarray of shape (n_iter_,)
        Kish's effective sample size ``(sum v)^2 / sum v^2`` (``1 / sum q^2`` for
        ``v = q`` summing to one) of the weights ``v`` of each M-step, or of each
        L-BFGS iteration with ``solver="gradient"`` (Kish's size of ``w`` during
        an unweighted warm-up), or of each epoch's weights with
        ``solver="adam"``; only with ``reweighting``.
    group_weights_ : ndarray of shape (n_groups,)
        The weight of each group (in the order of ``np.unique(groups)``) in the
        final M-step; only with Group DRO.
    hidden_coef_ : ndarray of shape (n_features_in_, n_hidden) or None
        Weights of the shared hidden layer (``solver="adam"`` with
        ``hidden_layer_sizes``; ``None`` without a hidden layer). The gate and
        the experts are then fitted on its features, which every predict method
        computes first.
    hidden_intercept_ : ndarray of shape (n_hidden,) or None
        Intercepts of the shared hidden layer.
    validation_scores_ : ndarray of shape (n_iter_,)
        Weighted mean validation log-likelihood after each epoch
        (``solver="adam"`` with ``early_stopping``).
    solver_ : {"em", "gradient", "adam"}
        The solver that trained the mixture: ``solver``, or the one ``"auto"``
        chose.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when ``X`` has string feature names.

    See Also
    --------
    MixtureOfExpertsRegressor : the same model for regression.
    sklearn.ensemble.VotingClassifier : fixed, input-independent weights.

    References
    ----------
    .. [1] Jordan, M. I. and Jacobs, R. A. (1994). Hierarchical mixtures of experts and
       the EM algorithm. Neural Computation 6(2).
    .. [2] Wong, Prinster, Saria, Chellappa and Liu (2026). Calibrated mixtures of
       experts under distribution shift. ICML.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmoe import MixtureOfExpertsClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> moe = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, y)
    >>> moe.predict_proba(X[:2]).shape
    (2, 3)
    >>> moe.predict_gate_proba(X[:2]).shape
    (2, 2)

    Hard routing with experts calibrated on the samples routed to them:

    >>> calibrated = MixtureOfExpertsClassifier(
    ...     n_experts=2, routing="hard", expert_calibration="temperature",
    ...     random_state=0,
    ... ).fit(X, y)
    >>> len(calibrated.expert_calibrators_)
    2

    Joint gradient training of the gate and the logistic experts:

    >>> joint = MixtureOfExpertsClassifier(
    ...     n_experts=2, solver="gradient", max_iter=500, random_state=0,
    ... ).fit(X, y)
    >>> type(joint.experts_[0]).__name__, bool(joint.converged_)
    ('LogisticRegression', True)

    Stochastic joint training with a shared hidden layer, tilted in minibatches:

    >>> from skmoe.reweighting import AdversarialReweighting
    >>> stochastic = MixtureOfExpertsClassifier(
    ...     n_experts=2, solver="adam", hidden_layer_sizes=(16,), max_iter=50,
    ...     batch_size=32, reweighting=AdversarialReweighting(), random_state=0,
    ... ).fit(X, y)
    >>> stochastic.hidden_coef_.shape, stochastic.predict_proba(X[:2]).shape
    ((4, 16), (2, 3))
    """

    def __init__(
        self,
        expert=None,
        *,
        n_experts=None,
        gate=None,
        routing="soft",
        top_k=2,
        max_iter=100,
        tol=1e-4,
        n_init=1,
        init="kmeans",
        warm_start=False,
        random_state=None,
        verbose=0,
        n_jobs=None,
        reweighting=None,
        gate_features=None,
        min_prior=0.0,
        expert_calibration=None,
        solver="auto",
        hidden_layer_sizes=None,
        activation="relu",
        batch_size=128,
        learning_rate_init=1e-2,
        learning_rate="cosine",
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
    ):
        self.expert_calibration = expert_calibration
        self.solver = solver
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        super().__init__(
            expert,
            n_experts=n_experts,
            gate=gate,
            routing=routing,
            top_k=top_k,
            max_iter=max_iter,
            tol=tol,
            n_init=n_init,
            init=init,
            warm_start=warm_start,
            random_state=random_state,
            verbose=verbose,
            n_jobs=n_jobs,
            reweighting=reweighting,
            gate_features=gate_features,
            min_prior=min_prior,
        )

    _parameter_constraints = {
        **BaseMixtureOfExperts._parameter_constraints,
        "expert_calibration": [
            None,
            StrOptions({"sigmoid", "isotonic", "temperature"}),
        ],
        "solver": [StrOptions({"auto", "em", "gradient", "adam"})],
        **STOCHASTIC_PARAMETER_CONSTRAINTS,
    }

    def _default_expert(self):
        return LogisticRegression()

    def _check_expert(self, estimator, name):
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(
                f"{name}={estimator!r} has no predict_proba; the experts of "
                "MixtureOfExpertsClassifier must predict class probabilities."
            )

    def _encode_targets(self, y):
        y = np.asarray(y)
        indices = np.searchsorted(self.classes_, y)
        indices = np.minimum(indices, self.classes_.shape[0] - 1)
        unknown = self.classes_[indices] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels the mixture was not fitted on: "
                f"{np.unique(y[unknown])[:5].tolist()}; its classes_ are "
                f"{self.classes_.tolist()}."
            )
        return indices

    def _fit_expert_fallback(self, index, X, y, sample_weight):
        if np.unique(y).shape[0] < 2:
            return DummyClassifier(strategy="prior").fit(X, y, sample_weight)
        return None

    def fit(self, X, y, sample_weight=None, groups=None, **fit_params):
        """Fit the mixture by EM (soft or top-k routing), hard EM or joint gradient.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights multiplied into the responsibilities the experts and the gate are
            fitted with, and into the likelihood EM maximises.
        groups : array-like of shape (n_samples,), default=None
            Group (domain) label of each sample, used by
            ``reweighting="group_dro"`` (:class:`~skmoe.reweighting.GroupDRO`),
            which needs it; ignored otherwise, so that a grid search can route the
            same ``groups`` to every candidate. Meta-estimators pass it under
            metadata routing after ``set_fit_request(groups=True)`` (not requested
            by default, so routing ``groups`` to a splitter alone needs nothing).
        **fit_params : dict
            Further parameters of the experts' ``fit``; only with metadata routing
            enabled (``sklearn.set_config(enable_metadata_routing=True)``).

        Returns
        -------
        self : MixtureOfExpertsClassifier
            The fitted mixture.
        """
        self._validate_params()
        # before the data: parameter errors first ("auto" can always fall back on EM)
        _SOLVERS[self.solver if self.solver != "auto" else "em"].check(self)
        self._raise_for_fit_params(fit_params)
        # a warm start checks everything it carries over before changing anything
        warm = self._continues_fit()
        if warm:
            self._check_warm_start_features(X)
        with explained_input_errors(self):
            X, y = validate_data(
                self, X, y, reset=not warm, dtype=[np.float64, np.float32],
                accept_sparse=SPARSE_FORMATS,
            )
        solver = self.solver if self.solver != "auto" else _auto.choose(self, X)
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(
                "MixtureOfExpertsClassifier needs samples of at least 2 classes in y; "
                f"got only one class: {classes[0]!r}."
            )
        n_hidden = hidden_size(self) if solver == "adam" else 0
        if warm:
            self._check_warm_start_classes(classes)
            self._check_warm_start_layout(self._layout(n_hidden))
        self.solver_ = solver
        if self.solver_ != "adam":
            forget_adam_fit(self)
        X = self._check_sparse_solver(X)
        self.classes_ = classes
        self._fit(X, encoded, sample_weight, fit_params, groups)
        self._fitted_layout = self._layout(n_hidden)
        return self

    def _solver_module(self):
        if self.solver != "auto":
            return _SOLVERS[self.solver]
        # Adam chosen by "auto" runs its epoch budget (skmoe.solvers._auto)
        return _auto if getattr(self, "solver_", "em") == "adam" else _em

    @available_if(_uses_adam)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of ``solver="adam"`` over a chunk of data.

        Continues the training of earlier calls (or of :meth:`fit`), at the constant
        learning rate ``learning_rate_init``, with the Adam state kept between
        calls; nothing of the chunk is kept, so that data too large for memory can
        be streamed in chunks. The first call draws the hidden layer, sets the gate
        from ``init``'s clusters of its chunk and starts the heads at each
        cluster's class frequencies. The penalties are divided by the total sample
        weight seen so far (after one pass over all chunks: the penalty ``fit``
        uses). With ``reweighting``, the tilt starts after
        ``reweighting.warmup * max_iter`` calls. ``early_stopping`` and
        ``n_iter_no_change`` are not used; ``n_iter_`` counts the epochs (calls),
        ``lower_bound_`` is the last call's mean objective and ``converged_`` is
        False. Only with ``solver="adam"``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data: an array, a slice of a NumPy memmap, or a
            CSR/CSC matrix (densified one chunk of minibatches at a time).
        y : array-like of shape (n_samples,)
            Its class labels.
        classes : array-like of shape (n_classes,), default=None
            Every class of the whole data; required on the first call (unless the
            mixture was fitted before), ignored or checked afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the chunk's samples.

        Returns
        -------
        self : MixtureOfExpertsClassifier
            The updated mixture.
        """
        self._validate_params()
        if self.expert_calibration is not None:
            raise ValueError(
                "partial_fit cannot calibrate the experts, which needs all the data "
                f"at once; got expert_calibration={self.expert_calibration!r}. Use "
                "fit, or expert_calibration=None."
            )
        check_stochastic_solver(self, regression=False)
        first_call = _check_partial_fit_first_call(self, classes)
        X, y = validate_data(
            self,
            X,
            y,
            reset=first_call,
            dtype=[np.float64, np.float32],
            accept_sparse=SPARSE_FORMATS,
        )
        X = self._check_sparse_solver(X)
        if not first_call:
            self._check_warm_start_layout(self._layout(hidden_size(self)), partial=True)
        check_classification_targets(y)
        if self.classes_.shape[0] < 2:
            raise ValueError(
                "MixtureOfExpertsClassifier needs at least 2 classes; got "
                f"classes={self.classes_!r}."
            )
        encoded = np.searchsorted(self.classes_, y)
        unknown = (encoded >= self.classes_.shape[0]) | (
            self.classes_[np.minimum(encoded, self.classes_.shape[0] - 1)] != y
        )
        if np.any(unknown):
            raise ValueError(
                f"y holds labels not in classes={self.classes_!r}: "
                f"{np.unique(y[unknown])!r}."
            )
        partial_fit_stochastic(
            self, X, encoded, sample_weight, first_call, regression=False
        )
        if first_call:
            self._fitted_layout = self._layout(hidden_size(self))
        self.solver_ = "adam"
        # soft routing: an expert lacking a class gives it no mass of its own
        self.unseen_class_proba_ = np.zeros((len(self.experts_), len(self.classes_)))
        return self

    def _after_em(self, X, y, weights, templates, expert_weights, random_state):
        n_classes = self.classes_.shape[0]
        if self.routing == "soft":
            # every expert predicts every sample, and one that lacks a class does
            # so because the gate sends that class's samples to others: its zero
            # is not the mixture's, and smoothing it only blurs the mixture
            self.unseen_class_proba_ = np.zeros((len(self.experts_), n_classes))
        else:
            self.unseen_class_proba_ = _unseen_class_proba(
                self.experts_, y, expert_weights, weights, n_classes
            )
        if self.expert_calibration is None:
            if hasattr(self, "expert_calibrators_"):
                del self.expert_calibrators_  # from an earlier fit with calibration
            return
        self.expert_calibrators_ = None  # the cross-fitting sees raw experts
        n_classes = self.classes_.shape[0]
        # every expert is calibrated on its region: the samples it is the top expert
        # for (the samples it is given, under hard routing)
        top = np.argmax(self._routing_weights(X), axis=1)
        counts = np.bincount(y, minlength=n_classes)
        n_splits = min(_CALIBRATION_FOLDS, X.shape[0])
        splitter = (StratifiedKFold if counts.min() >= n_splits else KFold)(
            n_splits=n_splits,
            shuffle=True,
            random_state=random_state.randint(np.iinfo(np.int32).max),
        )
        folds = list(splitter.split(X, y))
        jobs = []
        for k, template in enumerate(templates):
            for train, test in folds:
                test = test[(top[test] == k) & (weights[test] > 0)]
                if test.size:
                    rows, sample_weight = self._weighted_view(
                        expert_weights[:, k], candidates=train
                    )
                    jobs.append((k, template, rows, sample_weight, test))
        predictions = Parallel(n_jobs=self.n_jobs)(
            delayed(self._out_of_fold_proba)(
                k, template, X, y, rows, sample_weight, test
            )
            for k, template, rows, sample_weight, test in jobs
        )
        out_of_fold = np.zeros((X.shape[0], len(templates), n_classes))
        for (k, _, _, _, test), proba in zip(jobs, predictions, strict=True):
            out_of_fold[test, k] = proba
        self.expert_calibrators_ = _fit_expert_calibrators(
            self.expert_calibration, out_of_fold, top, y, weights
        )

    def _out_of_fold_proba(self, index, template, X, y, rows, sample_weight, test):
        """Probabilities on ``test`` of a fresh expert fitted on ``rows`` only."""
        n_classes = self.classes_.shape[0]
        if rows.size == 0:
            return np.full((test.size, n_classes), 1.0 / n_classes)
        expert = self._fit_one(index, template, X, y, rows, sample_weight, warm=False)
        return _aligned_proba(expert, X[test], n_classes)

    def _expert_proba(self, index, X):
        """Class probabilities of expert ``index``, through its calibration map."""
        proba = _aligned_proba(self.experts_[index], X, self.classes_.shape[0])
        calibrators = getattr(self, "expert_calibrators_", None)
        if calibrators is not None and calibrators[index] is not None:
            proba = calibrators[index].predict(proba)
        # the classes the expert never saw: the smoothed frequencies of its region
        unseen = self.unseen_class_proba_[index]
        return proba * (1.0 - unseen.sum()) + unseen

    def _expert_disagreement(self, X, routing_weights):
        # raw experts: the calibration maps are fitted after EM
        n_classes = self.classes_.shape[0]
        expert_proba = np.stack(
            [_aligned_proba(expert, X, n_classes) for expert in self.experts_], axis=1
        )
        mixture = np.einsum("nk,nkc->nc", routing_weights, expert_proba)
        squared = ((expert_proba - mixture[:, None, :]) ** 2).sum(axis=2)
        return (routing_weights * squared).sum(axis=1)

    def _predictive_log_likelihood(self, X, y):
        # with the mass hard routing gives to the classes an expert never saw
        rows = np.arange(X.shape[0])
        with np.errstate(divide="ignore"):
            return np.column_stack(
                [
                    np.maximum(np.log(self._expert_proba(k, X)[rows, y]), _LOG_TINY)
                    for k in range(len(self.experts_))
                ]
            )

    def _expert_log_likelihood(self, X, y):
        rows = np.arange(X.shape[0])
        log_likelihood = np.empty((X.shape[0], len(self.experts_)))
        n_classes = self.classes_.shape[0]
        with np.errstate(divide="ignore"):
            for k, expert in enumerate(self.experts_):
                proba = _aligned_proba(expert, X, n_classes)[rows, y]
                log_likelihood[:, k] = np.maximum(np.log(proba), _LOG_TINY)
        return log_likelihood

    def predict_expert_proba(self, X):
        """Class probabilities of every expert, whatever the routing.

        With ``expert_calibration`` these are the calibrated probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        expert_proba : ndarray of shape (n_samples, n_experts, n_classes)
        """
        X = self._validate_predict_input(X)
        return np.stack(
            [self._expert_proba(k, X) for k in range(len(self.experts_))], axis=1
        )

    def predict_proba(self, X):
        """Class probabilities of the mixture under its routing.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        X = self._validate_predict_input(X)
        n_classes = self.classes_.shape[0]
        proba = self._combine(
            X, lambda k, expert, rows: self._expert_proba(k, rows), n_classes
        )
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class under the mixture.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
