"""Stochastic joint training of a mixture of experts: ``solver="adam"``.

The softmax gate and the experts' linear heads (softmax heads for the classifier,
linear-Gaussian heads with a noise scale each for the regressor), optionally on a
shared hidden layer feeding both (``hidden_layer_sizes``, the paper's backbone in
small), are trained together by minibatch AdamW with a cosine (or constant) learning
rate, optionally with early stopping on a held-out fraction that keeps the best
iterate, and with ``partial_fit`` over chunks. With
:class:`~skmoe.reweighting.AdversarialReweighting`, every minibatch after the warm-up
(counted in epochs) minimises the tilted objective inside the batch, in Danskin's form
or through the weights as the authors' code does, optionally filtered, bounded by
``min_ess`` and normalised within each class (``class_conditional``). One numba call
(:func:`skmoe._kernels.stochastic.adam_epoch`) runs a whole epoch; the fitted model is
handed back as a :class:`~skmoe.gating.SoftmaxGate` and scikit-learn experts
(``LogisticRegression``, ``Ridge`` or ``LinearRegression``) on the features the
estimator's ``_features`` computes, so that prediction, pickling and
``expert_calibration`` work as for the other solvers.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_regressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

from skmoe._base import _hidden_features
from skmoe._kernels.stochastic import (
    DANSKIN,
    NO_TILT,
    RELU,
    TANH,
    THROUGH_WEIGHTS,
    adam_epoch,
    mixture_losses,
    parameter_layout,
)
from skmoe.gating import SoftmaxGate
from skmoe.reweighting import AdversarialReweighting, effective_sample_size
from skmoe.solvers import _DISAGREEMENT_THRESHOLD, _REGRET_THRESHOLD
from skmoe.solvers._gradient import (
    _DENSE_BLOCK_ELEMENTS,
    _dense_blocks,
    _expert_params,
    _fitted_expert,
)

# Adam's moment decay rates and denominator offset (Kingma and Ba's defaults, as
# torch.optim.AdamW and sklearn's MLP).
_BETA1, _BETA2, _EPSILON = 0.9, 0.999, 1e-8
# Noise scales are floored at this fraction of the spread of y, as EM floors them.
_NOISE_FLOOR = 1e-3
# Pseudo-count (in units of the mean sample weight) added to every class of every
# initial cluster, so that a class a cluster holds no sample of gets a finite logit.
_PRIOR_SMOOTHING = 1.0
# Training rows on which _screen_starts compares its starts.
_SCREEN_ROWS = 10_000

STOCHASTIC_PARAMETER_CONSTRAINTS = {
    "hidden_layer_sizes": [None, Interval(Integral, 1, None, closed="left"), tuple],
    "activation": [StrOptions({"relu", "tanh"})],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "learning_rate": [StrOptions({"cosine", "constant"})],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
}


def hidden_size(mixture):
    """Width of the hidden layer (0 without one); raise for more than one layer."""
    sizes = mixture.hidden_layer_sizes
    if sizes is None:
        return 0
    if isinstance(sizes, Integral):
        return int(sizes)
    if len(sizes) > 1 or not all(
        isinstance(size, Integral) and size >= 1 for size in sizes
    ):
        raise ValueError(
            "solver='adam' supports one shared hidden layer: hidden_layer_sizes must "
            "be None, an int, or a tuple of at most one positive int; got "
            f"hidden_layer_sizes={sizes!r}."
        )
    return int(sizes[0]) if sizes else 0


def forget_adam_fit(mixture):
    """Drop what an earlier ``solver="adam"`` fit left that another solver does not
    set: the hidden layer (and the experts fitted on its features, so that a warm
    start begins afresh), the Adam state and the validation scores."""
    if getattr(mixture, "hidden_coef_", None) is not None and hasattr(
        mixture, "experts_"
    ):
        del mixture.experts_
    for name in (
        "hidden_coef_",
        "hidden_intercept_",
        "validation_scores_",
        "_adam_state",
        "_partial_fit_random_state",
    ):
        if hasattr(mixture, name):
            delattr(mixture, name)


def check_stochastic_solver(mixture, regression):
    """Raise a clear error if ``mixture``'s parameters do not fit ``solver="adam"``."""
    if mixture.routing != "soft":
        raise ValueError(
            "solver='adam' trains the soft mixture, whose likelihood is smooth; got "
            f"routing={mixture.routing!r}. Use routing='soft' or solver='em'."
        )
    if mixture.gate is not None and not isinstance(mixture.gate, SoftmaxGate):
        raise ValueError(
            "solver='adam' trains a softmax gate: gate must be None or a SoftmaxGate; "
            f"got gate={mixture.gate!r}. Use solver='em' for other gates."
        )
    hidden_size(mixture)
    reweighting = mixture.reweighting
    if not (
        reweighting is None
        or isinstance(reweighting, AdversarialReweighting)
        or reweighting in ("adversarial", "adversarial_filtered")
    ):
        raise ValueError(
            "solver='adam' supports reweighting=None, 'adversarial', "
            "'adversarial_filtered' or an AdversarialReweighting instance; got "
            f"reweighting={reweighting!r}. Use solver='em' for it."
        )
    if isinstance(reweighting, AdversarialReweighting):
        reweighting._validate_params()
    templates = mixture._expert_templates()
    for index, expert in enumerate(templates):
        name = f"expert[{index}]" if isinstance(mixture.expert, list) else "expert"
        if regression:
            if not isinstance(expert, Ridge | LinearRegression):
                raise ValueError(
                    "solver='adam' trains linear-Gaussian experts: "
                    f"{name} must be a Ridge or a LinearRegression; got "
                    f"{name}={expert!r}. Use solver='em' for other experts."
                )
            if getattr(expert, "positive", False) or np.ndim(
                getattr(expert, "alpha", 0.0)
            ):
                raise ValueError(
                    "solver='adam' supports unconstrained experts with one scalar "
                    f"penalty; {name}={expert!r} has positive=True or an array alpha."
                )
            continue
        if not isinstance(expert, LogisticRegression):
            raise ValueError(
                "solver='adam' trains linear softmax experts: "
                f"{name} must be a LogisticRegression; got {name}={expert!r}. Use "
                "solver='em' for other experts."
            )
        params = expert.get_params()
        if params["penalty"] not in ("deprecated", "l2", None) or params[
            "l1_ratio"
        ] not in (None, 0, 0.0):
            raise ValueError(
                "solver='adam' supports L2-penalised experts only; "
                f"{name} has penalty={params['penalty']!r} and "
                f"l1_ratio={params['l1_ratio']!r}."
            )
        if params["class_weight"] is not None:
            raise ValueError(
                "solver='adam' does not support class weights in the experts; "
                f"{name} has class_weight={params['class_weight']!r}. Pass "
                "sample_weight to fit instead."
            )
    return templates


def _activation_code(mixture):
    return RELU if mixture.activation == "relu" else TANH


def _expert_penalty(expert):
    """The L2 strength of an expert on a weighted *sum* of losses (``1 / C`` for a
    logistic expert, ``alpha`` for a ridge one; 0 without penalty)."""
    if isinstance(expert, LogisticRegression):
        if expert.get_params()["penalty"] is None or np.isinf(expert.C):
            return 0.0
        return 1.0 / expert.C
    if isinstance(expert, Ridge):
        return float(expert.alpha)
    return 0.0


class _Layout:
    """The flat parameter vector of one mixture: shapes, masks and penalties."""

    def __init__(self, mixture, n_features, n_outputs, regression, templates):
        self.n_hidden = hidden_size(mixture)
        self.n_experts = len(templates)
        self.regression = regression
        self.dims = np.array(
            [
                n_features,
                self.n_hidden,
                self.n_experts,
                n_outputs,
                int(regression),
                _activation_code(mixture) if self.n_hidden else 0,
            ],
            dtype=np.intp,
        )
        offsets = parameter_layout(self.dims)
        self.o_hidden, self.o_gate, self.o_heads, self.o_noise, self.size = offsets[:5]
        self.n_inputs = int(offsets[5])
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.hidden_shape = (self.n_hidden, n_features + 1)
        self.gate_shape = (self.n_experts, self.n_inputs + 1)
        self.heads_shape = (self.n_experts, n_outputs, self.n_inputs + 1)
        # masks: the weights (not intercepts, not noise scales) decay; the free
        # coordinates are those Adam moves
        self.weights_mask = np.zeros(self.size, dtype=bool)
        self.free = np.ones(self.size, dtype=np.bool_)
        self.expert_penalty = np.zeros(self.size)
        hidden, gate, heads = self.views(self.weights_mask)
        hidden[:, :-1] = True
        gate[:, :-1] = True
        heads[:, :, :-1] = True
        _, _, free_heads = self.views(self.free)
        _, _, penalty_heads = self.views(self.expert_penalty)
        for k, template in enumerate(templates):
            penalty_heads[k, :, :-1] = _expert_penalty(template)
            if not template.fit_intercept:
                free_heads[k, :, -1] = False
        if not regression and n_outputs == 2:
            free_heads[:, 0, :] = False  # binary LogisticRegression's parametrisation

    def views(self, vector):
        """The hidden, gate and heads blocks of ``vector`` as arrays (views)."""
        return (
            vector[self.o_hidden : self.o_gate].reshape(self.hidden_shape),
            vector[self.o_gate : self.o_heads].reshape(self.gate_shape),
            vector[self.o_heads : self.o_noise].reshape(self.heads_shape),
        )

    def noise(self, vector):
        return vector[self.o_noise : self.size]

    def features(self, X, theta):
        if not self.n_hidden:
            return X if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        hidden, _, _ = self.views(theta)
        activation = "relu" if self.dims[5] == RELU else "tanh"
        return _hidden_features(X, hidden[:, :-1].T, hidden[:, -1], activation)


def _penalties(layout, gate_c, total_weight, weight_decay):
    """The coupled L2 (the gate's and experts' own penalties, divided by the total
    data weight, as for the other solvers) and AdamW's decoupled decay."""
    l2 = layout.expert_penalty / total_weight
    _, gate, _ = layout.views(l2)
    if not np.isinf(gate_c):
        gate[:, :-1] = 1.0 / (gate_c * total_weight)
    decay = np.where(layout.weights_mask, weight_decay, 0.0)
    return l2, decay


def _initial_theta(layout, X, y, weights, responsibilities, random_state):
    """Parameters at the start: a random hidden layer (Glorot, as sklearn's MLP), a
    gate routing to ``init``'s clusters and heads fitted to each cluster's targets.

    The gate is the posterior of isotropic Gaussians with equal priors centred at the
    clusters' (weighted) means in feature space, with their pooled variance: scores
    ``(mu_k . f - ||mu_k||^2 / 2) / s^2``. Each classification head starts at its
    cluster's smoothed log class frequencies, each regression head at its cluster's
    mean and spread of (standardised) ``y``: the first step is then the one EM's
    first M-step would take on the intercepts.
    """
    theta = np.zeros(layout.size)
    hidden, gate, heads = layout.views(theta)
    if layout.n_hidden:
        bound = np.sqrt(6.0 / (layout.n_features + layout.n_hidden))
        hidden[:] = random_state.uniform(-bound, bound, size=layout.hidden_shape)
    features = layout.features(X, theta)
    labels = np.argmax(responsibilities, axis=1)
    masses = np.bincount(labels, weights=weights, minlength=layout.n_experts)
    # each cluster's weighted sum of rows as one (sparse) product: sparse X is never
    # densified whole, dense X never copied
    membership = sp.csr_matrix(
        (weights, (labels, np.arange(labels.shape[0]))),
        shape=(layout.n_experts, labels.shape[0]),
    )
    centres = membership @ features
    centres = np.asarray(
        centres.toarray() if sp.issparse(centres) else centres, dtype=np.float64
    )
    centres /= np.maximum(masses, np.finfo(float).tiny)[:, None]
    if sp.issparse(features):
        # ||f - c||^2 = ||f||^2 - 2 f.c + ||c||^2 without densifying a row
        squared = (
            np.asarray(features.multiply(features).sum(axis=1)).ravel()
            - 2 * np.asarray(features @ centres.T)[np.arange(labels.shape[0]), labels]
            + (centres**2).sum(axis=1)[labels]
        )
    else:
        squared = ((features - centres[labels]) ** 2).sum(axis=1)
    spread = float(weights @ squared) / weights.sum()
    spread = max(float(spread), np.finfo(float).eps)
    gate[:, :-1] = centres / spread
    gate[:, -1] = -0.5 * (centres**2).sum(axis=1) / spread
    if layout.regression:
        noise = layout.noise(theta)
        for k in range(layout.n_experts):
            members = labels == k
            if masses[k] > 0:
                mean = np.average(y[members], weights=weights[members])
                variance = np.average(
                    (y[members] - mean) ** 2, weights=weights[members]
                )
            else:
                mean, variance = 0.0, 1.0
            heads[k, 0, -1] = mean
            noise[k] = 0.5 * np.log(max(variance, _NOISE_FLOOR**2))
    else:
        counts = np.zeros((layout.n_experts, layout.n_outputs))
        np.add.at(counts, (labels, y), weights)
        log_prior = np.log(counts + _PRIOR_SMOOTHING * weights.mean())
        heads[:, :, -1] = log_prior - log_prior.mean(axis=1, keepdims=True)
        if layout.n_outputs == 2:
            heads[:, :, -1] -= heads[:, :1, -1]
    _, _, free_heads = layout.views(layout.free)
    heads[~free_heads] = 0.0
    return theta


def _theta_from_fitted(mixture, layout, y_mean, y_scale):
    """Parameters of an already fitted mixture (warm start, ``partial_fit`` after
    ``fit``), or None when its shapes differ from ``layout``'s."""
    theta = np.zeros(layout.size)
    hidden, gate, heads = layout.views(theta)
    coef = getattr(mixture, "hidden_coef_", None)
    if (0 if coef is None else coef.shape[1]) != layout.n_hidden:
        return None
    if layout.n_hidden:
        hidden[:, :-1] = coef.T
        hidden[:, -1] = mixture.hidden_intercept_
    fitted_gate = mixture.gate_
    if (
        not isinstance(fitted_gate, SoftmaxGate)
        or fitted_gate.coef_.shape != (layout.n_experts, layout.n_inputs)
        or len(mixture.experts_) != layout.n_experts
    ):
        return None
    gate[:, :-1] = fitted_gate.coef_
    gate[:, -1] = fitted_gate.intercept_
    for k, expert in enumerate(mixture.experts_):
        if layout.regression:
            heads[k, 0, :-1] = np.ravel(expert.coef_) / y_scale
            heads[k, 0, -1] = (float(np.ravel(expert.intercept_)[0]) - y_mean) / y_scale
        else:
            heads[k] = _expert_params(expert, layout.n_outputs, layout.n_inputs)
    if layout.regression:
        layout.noise(theta)[:] = np.log(
            np.maximum(mixture.noise_scale_ / y_scale, _NOISE_FLOOR)
        )
    elif layout.n_outputs == 2:
        heads -= heads[:, :1, :].copy()
    _, _, free_heads = layout.views(layout.free)
    heads[~free_heads] = 0.0
    return theta


def _install(mixture, layout, theta, templates, n_iter, y_mean, y_scale):
    """Set ``hidden_coef_``, ``hidden_intercept_``, ``gate_``, ``experts_`` (and the
    regressor's ``noise_scale_``) of ``mixture`` from ``theta``."""
    hidden, gate, heads = layout.views(theta)
    if layout.n_hidden:
        mixture.hidden_coef_ = hidden[:, :-1].T.copy()
        mixture.hidden_intercept_ = hidden[:, -1].copy()
    else:
        mixture.hidden_coef_ = None
        mixture.hidden_intercept_ = None
    fitted_gate = mixture.gate_
    fitted_gate.coef_ = gate[:, :-1].copy()
    fitted_gate.intercept_ = gate[:, -1].copy()
    fitted_gate.classes_ = np.arange(layout.n_experts)
    fitted_gate.n_features_in_ = layout.n_inputs
    fitted_gate.n_iter_ = n_iter
    if layout.regression:
        experts = []
        for k, template in enumerate(templates):
            expert = clone(template)
            expert.coef_ = y_scale * heads[k, 0, :-1].copy()
            expert.intercept_ = y_mean + y_scale * float(heads[k, 0, -1])
            expert.n_features_in_ = layout.n_inputs
            experts.append(expert)
        mixture.experts_ = experts
        mixture.noise_scale_ = y_scale * np.exp(layout.noise(theta))
    else:
        mixture.experts_ = [
            _fitted_expert(template, heads[k], n_iter)
            for k, template in enumerate(templates)
        ]


class _Trainer:
    """The data, layout, penalties and tilt settings of one stochastic training."""

    def __init__(self, mixture, X, y, weights, templates, regression, total_weight):
        self.mixture = mixture
        self.regression = regression
        self.X = X
        self.weights = np.ascontiguousarray(weights, dtype=np.float64)
        n_samples = X.shape[0]
        if regression:
            self.y_class = np.zeros(n_samples, dtype=np.intp)
            self.y_value = np.ascontiguousarray(y, dtype=np.float64)
            n_outputs = 1
        else:
            self.y_class = np.ascontiguousarray(y, dtype=np.intp)
            self.y_value = np.zeros(1)
            n_outputs = mixture.classes_.shape[0]
        self.layout = _Layout(mixture, X.shape[1], n_outputs, regression, templates)
        self.l2, self.decay = _penalties(
            self.layout, mixture.gate_.C, total_weight, mixture.weight_decay
        )
        reweighting = mixture._reweighting()
        self.reweighting = reweighting
        # the regressor has no classes: its tilt is over the whole minibatch
        self.class_conditional = bool(
            not regression and reweighting is not None and reweighting.class_conditional
        )
        if self.class_conditional:
            self.groups, self.n_groups = self.y_class, n_outputs
        else:
            self.groups, self.n_groups = np.zeros(n_samples, dtype=np.intp), 1

    def epoch(self, state, rows, tilting, total_steps, used_weights):
        """One epoch over ``rows`` (already shuffled); returns its mean objective."""
        reweighting = self.reweighting
        if tilting:
            mode = DANSKIN if reweighting.gradient == "danskin" else THROUGH_WEIGHTS
            eta = float(reweighting.eta)
            min_ess = -1.0 if reweighting.min_ess is None else reweighting.min_ess
            filtered, strength = reweighting.filtered, reweighting.filter_strength
        else:
            mode, eta, min_ess, filtered, strength = NO_TILT, 0.0, -1.0, False, 1.0
        settings = (
            self.l2,
            self.decay,
            self.layout.free,
            self.layout.dims,
            float(self.mixture.learning_rate_init),
            total_steps,
        )
        tilt = (
            self.n_groups,
            mode,
            eta,
            float(min_ess),
            bool(filtered),
            float(strength),
            _REGRET_THRESHOLD,
            _DISAGREEMENT_THRESHOLD,
            np.log(_NOISE_FLOOR),
        )

        def run(X, y_class, y_value, weights, groups, order, used):
            value, state["step"] = adam_epoch(
                X, y_class, y_value, weights, groups, order,
                self.mixture.batch_size, state["theta"], state["first_moment"],
                state["second_moment"], *settings, state["step"],
                _BETA1, _BETA2, _EPSILON, *tilt, used,
            )  # fmt: skip
            return value

        if not sp.issparse(self.X):  # one call, X read in place (a memmap too)
            return run(
                self.X, self.y_class, self.y_value, self.weights, self.groups, rows,
                used_weights,
            )  # fmt: skip
        total = float(self.weights[rows].sum())
        value = 0.0
        for chunk in self._sparse_chunks(rows):
            chunk_used = np.zeros(chunk.shape[0])
            chunk_value = run(
                self.X[chunk].toarray(),
                self.y_class[chunk],
                self.y_value[chunk] if self.regression else self.y_value,
                self.weights[chunk],
                self.groups[chunk],
                np.arange(chunk.shape[0]),
                chunk_used,
            )
            # the kernel weighs each batch by its share of the chunk's weight
            share = float(self.weights[chunk].sum()) / total if total > 0 else 0.0
            value += share * chunk_value
            used_weights[chunk] = share * chunk_used
        return value

    def _sparse_chunks(self, rows):
        """The epoch's shuffled ``rows`` cut into chunks of whole minibatches (at
        most ``_DENSE_BLOCK_ELEMENTS`` elements, at least one minibatch), each
        densified alone: the minibatches, and so the iterates, are those of the
        dense fit, and memory stays bounded whatever the number of rows."""
        batch_size = self.mixture.batch_size
        n_batches = max(1, _DENSE_BLOCK_ELEMENTS // (batch_size * self.X.shape[1]))
        size = n_batches * batch_size
        for start in range(0, rows.shape[0], size):
            yield rows[start : start + size]

    def losses(self, theta, rows=None):
        X = self.X if rows is None else self.X[rows]
        y_class = self.y_class if rows is None else self.y_class[rows]
        y_value = (
            self.y_value if rows is None or not self.regression else self.y_value[rows]
        )
        losses = np.empty(X.shape[0])
        for block, X_block in _dense_blocks(X):
            mixture_losses(
                X_block,
                y_class[block],
                y_value[block] if self.regression else y_value,
                theta,
                self.layout.dims,
                losses[block],
            )
        return losses


def _standardisation(y, weights, regression):
    """Mean and spread the regressor's targets are standardised with (0, 1 for the
    classifier): Adam's step sizes are then meaningful whatever the unit of y."""
    if not regression:
        return 0.0, 1.0
    mean = float(np.average(y, weights=weights))
    spread = float(np.sqrt(np.average((y - mean) ** 2, weights=weights)))
    # constant targets (a first partial_fit chunk can be): unit spread, not a
    # vanishing one that would blow up the targets of every later chunk
    return mean, spread if spread > 1e-12 * max(1.0, abs(mean)) else 1.0


def _validation_split(mixture, y, regression, random_state):
    """Training and validation rows for early stopping (stratified for classes)."""
    n_samples = y.shape[0]
    indices = np.arange(n_samples)
    if not mixture.early_stopping:
        return indices, None
    # train_test_split's own sizes, checked here so that the error names the
    # parameter the user set
    n_validation = int(np.ceil(mixture.validation_fraction * n_samples))
    n_train = n_samples - n_validation
    if n_train < 1:
        raise ValueError(
            f"validation_fraction={mixture.validation_fraction} leaves "
            f"{n_train} training and {n_validation} validation samples of "
            f"n_samples={n_samples}; early stopping needs at least one of each. "
            "Lower validation_fraction or set early_stopping=False."
        )
    stratify = None
    if not regression:
        counts = np.bincount(y)
        if counts[counts > 0].min() >= 2:
            stratify = y
    seed = random_state.randint(np.iinfo(np.int32).max)
    try:
        train, validation = train_test_split(
            indices,
            test_size=mixture.validation_fraction,
            random_state=seed,
            stratify=stratify,
        )
    except ValueError:
        train, validation = train_test_split(
            indices, test_size=mixture.validation_fraction, random_state=seed
        )
    return np.sort(train), np.sort(validation)


def run_stochastic(
    mixture,
    X,
    y,
    weights,
    templates,
    responsibilities,
    init_index,
    random_state,
    regression=False,
    max_iter=None,
    n_starts=1,
    screen_steps=0,
):
    """Train the mixture by minibatch AdamW from ``responsibilities`` (None: from the
    fitted model); return the state the solvers' ``run`` returns (:mod:`skmoe.sol­vers`).

    With ``n_starts > 1`` (``solver="auto"``; a fresh fit from a named ``init``),
    :func:`_screen_starts` first trains that many starts for about ``screen_steps``
    minibatch steps each and training goes on from the best one.

    ``max_iter`` counts epochs (None: the mixture's; ``solver="auto"`` passes its
    budget); a cosine schedule that runs to its end (rate
    zero) counts as converged. Without early stopping training stops after
    ``n_iter_no_change`` epochs whose mean training objective improved by less than
    ``tol`` on the best so far (as sklearn's MLP); with it, after as many epochs
    without an improvement of the validation log-likelihood by ``tol``, and the
    iterate of the best validation score is kept. With reweighting, the warm-up
    (``reweighting.warmup * max_iter`` epochs, or fewer if the untilted objective
    stops improving first) is untilted, and the tracking of the best iterate starts
    again when the tilt starts.
    """
    if max_iter is None:
        max_iter = mixture.max_iter
    y_mean, y_scale = _standardisation(y, weights, regression)
    y_fit = (y - y_mean) / y_scale if regression else y
    train, validation = _validation_split(mixture, y, regression, random_state)
    trainer = _Trainer(
        mixture, X, y_fit, weights, templates, regression, float(weights[train].sum())
    )
    layout = trainer.layout
    theta = None
    if responsibilities is None:
        theta = _theta_from_fitted(mixture, layout, y_mean, y_scale)
        if theta is None:
            responsibilities = mixture._initial_responsibilities(
                X, weights, layout.n_experts, random_state
            )
    if theta is None:
        theta = _initial_theta(
            layout,
            X[train],
            y_fit[train],
            weights[train],
            responsibilities[train],
            random_state,
        )
    state = _fresh_state(theta)
    batch_size = min(mixture.batch_size, train.size)
    steps_per_epoch = -(-train.size // batch_size)
    total_steps = max_iter * steps_per_epoch if mixture.learning_rate == "cosine" else 0
    reweighting = trainer.reweighting
    n_warmup = 0 if reweighting is None else reweighting._n_warmup(max_iter)
    tilting = reweighting is not None and n_warmup == 0
    used_weights = np.zeros(X.shape[0])
    best_used = None
    lower_bounds, effective_sizes, validation_scores = [], [], []
    best_score, best_theta, stall = -np.inf, None, 0
    converged = False
    n_iter = first = 0
    if (
        n_starts > 1
        and responsibilities is not None
        and reweighting is None
        and validation is None
        and isinstance(mixture.init, str)
    ):
        n_screen = min(max_iter - 1, -(-screen_steps // steps_per_epoch))
        if n_screen > 0:
            state, lower_bounds = _screen_starts(
                mixture, trainer, state, n_starts, n_screen, train, y_fit, weights,
                total_steps, used_weights, random_state,
            )  # fmt: skip
            n_iter = first = n_screen
    for n_iter in range(first + 1, max_iter + 1):
        if reweighting is not None and not tilting and n_iter > n_warmup:
            tilting, best_score, best_theta, stall = True, -np.inf, None, 0
        rows = random_state.permutation(train)
        value = trainer.epoch(state, rows, tilting, total_steps, used_weights)
        if not np.all(np.isfinite(state["theta"])):
            raise _divergence(mixture)
        lower_bounds.append(-value)
        if reweighting is not None:
            effective_sizes.append(effective_sample_size(used_weights[train]))
        if validation is not None:
            losses = trainer.losses(state["theta"], validation)
            score = -float(weights[validation] @ losses) / weights[validation].sum()
            score -= np.log(y_scale)  # the likelihood in the unit of y
            validation_scores.append(score)
        else:
            score = -value
        if score > best_score + mixture.tol:
            stall = 0
        else:
            stall += 1
        if score > best_score:
            best_score = score
            if validation is not None:
                best_theta = state["theta"].copy()
                best_used = used_weights.copy()
        if mixture.verbose:
            print(
                f"init {init_index} epoch {n_iter}: objective {value:.6f}"
                + (f", validation {score:.6f}" if validation is not None else "")
            )
        if stall >= mixture.n_iter_no_change:
            if reweighting is not None and not tilting:
                tilting, best_score, best_theta, stall = True, -np.inf, None, 0
                continue  # the warm-up ends early: the untilted objective settled
            converged = True
            break
    if mixture.learning_rate == "cosine" and n_iter == max_iter:
        # the schedule ran to its end, where the rate is zero: the iterate no
        # longer moves, which is the convergence this schedule promises
        converged = True
    if best_theta is not None:
        state["theta"] = best_theta
        used_weights = best_used
    theta = state["theta"]
    _install(mixture, layout, theta, templates, n_iter, y_mean, y_scale)
    losses = trainer.losses(theta)
    if regression:
        losses = losses + np.log(y_scale)  # the likelihood in the unit of y
    lower_bound = -float(weights @ losses) / float(weights.sum())
    if hasattr(mixture, "_partial_fit_random_state"):
        del mixture._partial_fit_random_state  # partial_fit after fit starts afresh
    mixture._adam_state = {
        **state,
        "dims": layout.dims.copy(),
        "y_mean": y_mean,
        "y_scale": y_scale,
        "seen_weight": float(weights[train].sum()),
        "epochs": n_iter,
    }
    out = {
        "experts_": mixture.experts_,
        "gate_": mixture.gate_,
        "hidden_coef_": mixture.hidden_coef_,
        "hidden_intercept_": mixture.hidden_intercept_,
        "n_iter_": n_iter,
        "converged_": converged,
        "lower_bound_": lower_bound,
        "lower_bounds_": np.asarray(lower_bounds),
        "_expert_weights": _posterior_weights(mixture, X, y, weights, regression),
        "_adam_state": mixture._adam_state,
        **mixture._extra_state(),
    }
    if validation is not None:
        out["validation_scores_"] = np.asarray(validation_scores)
    elif hasattr(mixture, "validation_scores_"):
        del mixture.validation_scores_  # from an earlier fit with early stopping
    if reweighting is not None:
        used = used_weights / used_weights.sum()
        out["adversarial_weights_"] = used
        out["effective_sample_sizes_"] = np.asarray(effective_sizes)
    return out


def _divergence(mixture):
    """The error of a fit whose parameters became non-finite."""
    return FloatingPointError(
        "solver='adam' diverged to non-finite parameters; lower "
        f"learning_rate_init={mixture.learning_rate_init} or scale the features."
    )


def _fresh_state(theta):
    """Adam's state at parameters ``theta``: zero moments, no step taken."""
    return {
        "theta": theta,
        "first_moment": np.zeros(theta.shape[0]),
        "second_moment": np.zeros(theta.shape[0]),
        "step": 0,
    }


def _screen_starts(
    mixture, trainer, state, n_starts, n_epochs, train, y_fit, weights, total_steps,
    used_weights, random_state,
):  # fmt: skip
    """Train ``n_starts`` starts for ``n_epochs`` epochs each and keep the best.

    The first start is ``state`` (from the fit's ``init``); the others come from
    the same ``init`` drawn again with the fit's random state (k-means on another
    subsample, another partition). Every start runs on the whole learning-rate
    schedule of the fit, so the kept one simply goes on: it is an ordinary run whose
    first ``n_epochs`` epochs were raced against others. The best is the one with
    the lowest mean loss on a fixed sample of at most :data:`_SCREEN_ROWS` training
    rows. On the known mixture of 8 logistic experts of
    ``benchmarks/time_to_good_model.py`` one start in four goes to a poor basin
    (held-out log loss 0.34-0.38 against 0.22); two epochs of 200,000 rows already
    tell it apart (0.36-0.39 against 0.24-0.25 on training rows), see
    ``benchmarks/README_time_to_good_model.md``.

    Returns the kept state and the per-epoch objectives of its run.
    """
    layout = trainer.layout
    sample = train
    if train.size > _SCREEN_ROWS:
        sample = np.sort(random_state.choice(train, _SCREEN_ROWS, replace=False))
    best = None
    for start in range(n_starts):
        if start:
            responsibilities = mixture._initial_responsibilities(
                trainer.X, weights, layout.n_experts, random_state
            )
            # the race runs without a validation split: ``train`` is every row, so
            # the arrays go in as they are (no copy of X per start)
            theta = _initial_theta(
                layout, trainer.X, y_fit, weights, responsibilities, random_state
            )
            state = _fresh_state(theta)
        values = []
        for epoch in range(1, n_epochs + 1):
            rows = random_state.permutation(train)
            values.append(trainer.epoch(state, rows, False, total_steps, used_weights))
            if mixture.verbose:
                print(f"start {start} epoch {epoch}: objective {values[-1]:.6f}")
        if not np.all(np.isfinite(state["theta"])):
            continue  # a diverged start loses; the fit raises if all do
        losses = trainer.losses(state["theta"], sample)
        loss = float(weights[sample] @ losses) / float(weights[sample].sum())
        if mixture.verbose:
            print(f"start {start}: loss {loss:.6f} on {sample.size} training rows")
        if best is None or loss < best[0]:
            best = (loss, state, [-value for value in values])
    if best is None:
        raise _divergence(mixture)
    return best[1], best[2]


def check(mixture):
    """The solvers' interface (:mod:`skmoe.solvers`): :func:`check_stochastic_solver`
    for either mixture; returns the expert templates."""
    return check_stochastic_solver(mixture, regression=is_regressor(mixture))


def run(
    mixture,
    X,
    y,
    weights,
    templates,
    responsibilities,
    init_index,
    random_state,
    max_iter=None,
    n_starts=1,
    screen_steps=0,
):
    """The solvers' interface (:mod:`skmoe.solvers`): :func:`run_stochastic` for
    either mixture, for at most ``max_iter`` epochs (None: the mixture's), after
    racing ``n_starts`` starts for about ``screen_steps`` steps."""
    return run_stochastic(
        mixture,
        X,
        y,
        weights,
        templates,
        responsibilities,
        init_index,
        random_state,
        regression=is_regressor(mixture),
        max_iter=max_iter,
        n_starts=n_starts,
        screen_steps=screen_steps,
    )


def _posterior_weights(mixture, X, y, weights, regression):
    """Posterior responsibilities times the data weights at the final model: the
    weights ``expert_calibration``'s cross-fitting refits each expert with (as for
    ``solver="gradient"``); None when nothing uses them."""
    if regression or getattr(mixture, "expert_calibration", None) is None:
        return None
    features = mixture._features(X)
    log_joint = mixture._log_gate(features) + mixture._expert_log_likelihood(
        features, y
    )
    log_joint -= log_joint.max(axis=1, keepdims=True)
    posterior = np.exp(log_joint)
    posterior /= posterior.sum(axis=1, keepdims=True)
    return posterior * weights[:, None]


def partial_fit_stochastic(mixture, X, y, sample_weight, first_call, regression):
    """One epoch of AdamW over the chunk ``(X, y)`` at the constant rate
    ``learning_rate_init``, continuing from the previous call (or from ``fit``).

    The first call initialises the parameters from ``init``'s clusters of this chunk
    (and, for the regressor, standardises y with this chunk's mean and spread). The
    penalties are divided by the total data weight seen so far, so that after one
    pass over every chunk they are those ``fit`` uses on all the data. The tilt
    starts once ``reweighting.warmup * max_iter`` calls have been made. Nothing of
    a chunk is kept after the call: memory does not grow with the number of chunks.
    """
    weights = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    if not weights.sum() > 0:
        raise ValueError("sample_weight must not sum to zero.")
    templates = check_stochastic_solver(mixture, regression)
    state = getattr(mixture, "_adam_state", None)
    if first_call:
        # one generator for the whole sequence of calls: an int random_state makes
        # the same sequence of chunks give the same model
        mixture._partial_fit_random_state = check_random_state(mixture.random_state)
        mixture.gate_ = mixture._new_gate()
        state = None
    random_state = getattr(mixture, "_partial_fit_random_state", None)
    if random_state is None:  # continuing after fit
        random_state = mixture._partial_fit_random_state = check_random_state(
            mixture.random_state
        )
    if state is None:
        y_mean, y_scale = _standardisation(y, weights, regression)
        state = {"y_mean": y_mean, "y_scale": y_scale, "seen_weight": 0.0, "epochs": 0}
    y_mean, y_scale = state["y_mean"], state["y_scale"]
    y_fit = (y - y_mean) / y_scale if regression else y
    state["seen_weight"] += float(weights.sum())
    trainer = _Trainer(
        mixture, X, y_fit, weights, templates, regression, state["seen_weight"]
    )
    layout = trainer.layout
    if "theta" not in state or not np.array_equal(state["dims"], layout.dims):
        theta = None
        if not first_call and hasattr(mixture, "experts_"):
            theta = _theta_from_fitted(mixture, layout, y_mean, y_scale)
        if theta is None:
            n_weighted = int(np.count_nonzero(weights))
            if n_weighted < layout.n_experts:
                raise ValueError(
                    "The first partial_fit chunk starts the experts from its rows "
                    f"and needs at least n_experts={layout.n_experts} of positive "
                    f"weight; got {n_weighted} of {X.shape[0]} rows. Pass a larger "
                    "first chunk."
                )
            responsibilities = mixture._initial_responsibilities(
                X, weights, layout.n_experts, random_state
            )
            theta = _initial_theta(
                layout, X, y_fit, weights, responsibilities, random_state
            )
        state.update(
            theta=theta,
            first_moment=np.zeros(layout.size),
            second_moment=np.zeros(layout.size),
            step=0,
            dims=layout.dims.copy(),
        )
    reweighting = trainer.reweighting
    tilting = reweighting is not None and state["epochs"] >= reweighting._n_warmup(
        mixture.max_iter
    )
    used_weights = np.zeros(X.shape[0])
    rows = random_state.permutation(X.shape[0])
    value = trainer.epoch(state, rows, tilting, 0, used_weights)
    if not np.all(np.isfinite(state["theta"])):
        raise _divergence(mixture)
    state["epochs"] += 1
    _install(
        mixture, layout, state["theta"], templates, state["epochs"], y_mean, y_scale
    )
    mixture._adam_state = state
    mixture.n_iter_ = state["epochs"]
    mixture.converged_ = False
    mixture.lower_bound_ = -value
    mixture.lower_bounds_ = np.array([-value])
    if reweighting is not None:
        mixture.adversarial_weights_ = used_weights / used_weights.sum()
        mixture.effective_sample_sizes_ = np.array(
            [effective_sample_size(used_weights)]
        )
    return mixture
