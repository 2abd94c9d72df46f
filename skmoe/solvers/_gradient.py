"""Joint gradient training of a softmax gate and softmax experts: solver="gradient".

EM refits the gate and the experts in turn; this module trains them together, by
L-BFGS on one smooth, deterministic objective over all their coefficients stacked.
Without reweighting the objective is the penalised weighted negative log-likelihood of
the mixture, the one EM maximises; with adversarial reweighting it is, after an
unweighted warm-up, the exact tilted (KL-DRO) objective within minibatches, either
differentiated by Danskin's theorem or through the weights as in the authors' code
(:class:`~skmoe.reweighting.AdversarialReweighting`, ``gradient``). The per-sample
losses and their weighted gradient come from the numba kernels of
:mod:`skmoe._kernels.joint`; the fitted gate and experts are handed back as a
:class:`~skmoe.gating.SoftmaxGate` and :class:`~sklearn.linear_model.LogisticRegression`
objects, so that everything downstream of EM (prediction, calibration) works on them.
The module follows the interface of :mod:`skmoe.solvers` (``check`` and ``run``).
"""

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import softmax
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skmoe._kernels._boundary import as_index_input, as_input
from skmoe._kernels.joint import joint_loss_grad, joint_losses
from skmoe.gating import SoftmaxGate
from skmoe.reweighting import AdversarialReweighting, effective_sample_size
from skmoe.solvers import routing_relevant
from skmoe.solvers._em import _m_step, reseed_empty_start

# The tilted phase runs at most this many rounds. Each round fixes the minibatch
# partition, the relevant sets of the filtered variant and each batch's eta' (the
# min_ess bound) from the losses at its start, so that L-BFGS sees one smooth
# objective; a round that converges is followed by one with a fresh partition and
# bounds computed at the new losses, so that the bound holds where training ends and
# samples meet other batch mates, as they would in the authors' minibatch epochs.
_TILT_ROUNDS = 3
# L-BFGS's relative decrease tolerance, left at the noise level (as SoftmaxGate does):
# the stopping rule is tol on the gradient, which a loose decrease test would preempt
# after one short step.
_FTOL = 64 * np.finfo(np.float64).eps
# Probability an initial expert gives a class its initial (EM) fit never saw: the
# joint model needs finite log-probabilities for every class.
_UNSEEN_PROBABILITY = 1e-4
# Sparse X reaches the row-wise joint kernels one block of rows at a time, densified:
# at most this many elements (16 MiB of float64) per block, whatever n is.
_DENSE_BLOCK_ELEMENTS = 2**21


def _dense_blocks(X):
    """``(rows, X[rows])`` with ``X[rows]`` dense: X itself in one piece when dense,
    blocks of a CSR matrix densified one at a time when sparse."""
    if not sp.issparse(X):
        yield slice(None), X
        return
    n_rows = max(1, _DENSE_BLOCK_ELEMENTS // max(X.shape[1], 1))
    for start in range(0, X.shape[0], n_rows):
        rows = slice(start, start + n_rows)
        yield rows, X[rows].toarray()


def check(mixture):
    """Raise a clear error if ``mixture``'s parameters do not fit ``solver="gradient"``.

    Returns
    -------
    templates : list of LogisticRegression
        The expert templates, one per expert.
    """
    if mixture.routing != "soft":
        raise ValueError(
            "solver='gradient' trains the soft mixture, whose likelihood is smooth; "
            f"got routing={mixture.routing!r}. Use routing='soft' or solver='em'."
        )
    if mixture.gate is not None and not isinstance(mixture.gate, SoftmaxGate):
        raise ValueError(
            "solver='gradient' trains a softmax gate: gate must be None or a "
            f"SoftmaxGate; got gate={mixture.gate!r}. Use solver='em' for other gates."
        )
    reweighting = mixture.reweighting
    if not (
        reweighting is None
        or isinstance(reweighting, AdversarialReweighting)
        or (
            isinstance(reweighting, str)
            and reweighting in ("adversarial", "adversarial_filtered")
        )
    ):
        raise ValueError(
            "solver='gradient' supports reweighting=None, 'adversarial', "
            "'adversarial_filtered' or an AdversarialReweighting instance; got "
            f"reweighting={reweighting!r}. Use solver='em' for it."
        )
    templates = mixture._expert_templates()
    for index, expert in enumerate(templates):
        name = f"expert[{index}]" if isinstance(mixture.expert, list) else "expert"
        if not isinstance(expert, LogisticRegression):
            raise ValueError(
                "solver='gradient' trains linear softmax experts: "
                f"{name} must be a LogisticRegression; got {name}={expert!r}. Use "
                "solver='em' for other experts."
            )
        params = expert.get_params()
        penalty = params["penalty"]
        if penalty not in ("deprecated", "l2", None):
            raise ValueError(
                "solver='gradient' supports L2-penalised experts only; "
                f"{name} has penalty={penalty!r}."
            )
        if params["l1_ratio"] not in (None, 0, 0.0):
            raise ValueError(
                "solver='gradient' supports L2-penalised experts only; "
                f"{name} has l1_ratio={params['l1_ratio']!r}, use l1_ratio=0."
            )
        if params["class_weight"] is not None:
            raise ValueError(
                "solver='gradient' does not support class weights in the experts; "
                f"{name} has class_weight={params['class_weight']!r}. Pass "
                "sample_weight to fit instead."
            )
    return templates


def _l2_strength(expert):
    """``1 / C`` of an expert, 0 without penalty."""
    if expert.get_params()["penalty"] is None or np.isinf(expert.C):
        return 0.0
    return 1.0 / expert.C


class _JointObjective:
    """The penalised objective over the free coefficients of gate and experts.

    The full parameter vector is the gate array ``(K, d + 1)`` followed by the expert
    array ``(K, C, d + 1)`` (intercepts last); ``free`` marks the coordinates that are
    optimised: with two classes the first class's row of every expert is fixed at
    zero (the parametrisation of a binary ``LogisticRegression``), and an expert with
    ``fit_intercept=False`` keeps its intercepts at zero. The value is

        data term + (sum_k ||coef of expert k||^2 / C_k + ||coef of gate||^2 / C_g)
                    / (2 W),

    with ``W`` the total sample weight: the penalties ``LogisticRegression`` and
    :class:`~skmoe.gating.SoftmaxGate` add to a weighted *sum* of losses, divided by
    ``W`` like the data term, which is a weighted *mean*: the plain mean loss
    ``sum_i (w_i / W) L_i``, or with ``plan`` set the tilted objective of
    :class:`~skmoe.reweighting._adversarial._TiltPlan`.
    """

    def __init__(self, X, y, weights, n_classes, templates, gate_alpha):
        n_features = X.shape[1]
        n_experts = len(templates)
        # dense X in the kernels' one argument type once, not at every iteration
        self.X = X if sp.issparse(X) else as_input(X)
        self.y = as_index_input(y)
        self.gate_shape = (n_experts, n_features + 1)
        self.experts_shape = (n_experts, n_classes, n_features + 1)
        self.n_gate = n_experts * (n_features + 1)
        total = float(weights.sum())
        self.data_weights = weights / total
        gate_penalty = np.full(self.gate_shape, gate_alpha)
        gate_penalty[:, -1] = 0.0
        expert_penalty = np.empty(self.experts_shape)
        expert_free = np.ones(self.experts_shape, dtype=bool)
        for k, template in enumerate(templates):
            expert_penalty[k] = _l2_strength(template)
            if not template.fit_intercept:
                expert_free[k, :, -1] = False
        expert_penalty[:, :, -1] = 0.0
        if n_classes == 2:
            expert_free[:, 0, :] = False
        self.penalty = np.concatenate([gate_penalty.ravel(), expert_penalty.ravel()])
        self.penalty /= total
        self.free = np.concatenate(
            [np.ones(self.n_gate, dtype=bool), expert_free.ravel()]
        )
        self.plan = None
        self.gradient = "danskin"
        self.losses_buffer = np.empty(X.shape[0])
        self.grad_gate = np.empty(self.gate_shape)
        self.grad_experts = np.empty(self.experts_shape)
        self._last = None

    def pack(self, gate, experts):
        full = np.concatenate([gate.ravel(), experts.ravel()])
        return full[self.free]

    def unpack(self, theta):
        full = np.zeros(self.free.shape[0])
        full[self.free] = theta
        gate = full[: self.n_gate].reshape(self.gate_shape)
        experts = full[self.n_gate :].reshape(self.experts_shape)
        return full, gate, experts

    def losses(self, theta):
        """The per-sample losses ``L_i`` at ``theta`` (one pass)."""
        if self._last is not None and np.array_equal(theta, self._last[0]):
            return self._last[1]
        _, gate, experts = self.unpack(theta)
        losses = np.empty(self.X.shape[0])
        for rows, X_block in _dense_blocks(self.X):
            joint_losses(X_block, self.y[rows], gate, experts, losses[rows])
        self._last = (theta.copy(), losses)
        return losses

    def weights(self, losses):
        """The weights of the data term at ``losses``, summing to one."""
        if self.plan is None:
            return self.data_weights
        return self.plan.weights(losses)

    def _loss_grad(self, gate, experts, coefficients, losses):
        """``sum_i c_i L_i``; its gradient into ``grad_gate``, ``grad_experts``."""
        if not sp.issparse(self.X):
            return joint_loss_grad(
                self.X,
                self.y,
                gate,
                experts,
                coefficients,
                losses,
                self.grad_gate,
                self.grad_experts,
            )
        block_gate = np.empty_like(self.grad_gate)
        block_experts = np.empty_like(self.grad_experts)
        self.grad_gate[...] = 0.0
        self.grad_experts[...] = 0.0
        value = 0.0
        for rows, X_block in _dense_blocks(self.X):
            value += joint_loss_grad(
                X_block,
                self.y[rows],
                gate,
                experts,
                coefficients[rows],
                losses[rows],
                block_gate,
                block_experts,
            )
            self.grad_gate += block_gate
            self.grad_experts += block_experts
        return value

    def __call__(self, theta):
        full, gate, experts = self.unpack(theta)
        if self.plan is None:
            coefficients = self.data_weights
        else:
            # the weights depend on every loss: one pass for the losses, one for
            # the gradient with the coefficients they give
            value, coefficients = self.plan.objective(self.losses(theta), self.gradient)
        losses = np.empty(self.X.shape[0])
        data_value = self._loss_grad(gate, experts, coefficients, losses)
        self._last = (theta.copy(), losses)
        if self.plan is None:
            value = data_value
        scaled = self.penalty * full
        value += 0.5 * float(scaled @ full)
        grad = np.concatenate([self.grad_gate.ravel(), self.grad_experts.ravel()])
        grad += scaled
        return value, grad[self.free]


def _expert_params(expert, n_classes, n_features):
    """The ``(C, d + 1)`` logit parameters of an EM-fitted expert.

    A ``LogisticRegression`` gives its coefficients (a binary one the second row of
    its seen classes); a ``DummyClassifier`` (an expert whose routed view held one
    class) gives the log of its prior as intercepts. A class the fit never saw gets
    zero coefficients and an intercept ``log(1e-4)`` below the lowest seen one.
    """
    params = np.zeros((n_classes, n_features + 1))
    seen = np.asarray(expert.classes_).astype(np.intp)
    if isinstance(expert, LogisticRegression):
        coef = np.atleast_2d(expert.coef_)
        intercept = np.broadcast_to(expert.intercept_, (coef.shape[0],))
        if coef.shape[0] == 1:
            params[seen[1], :-1] = coef[0]
            params[seen[1], -1] = intercept[0]
        else:
            params[seen, :-1] = coef
            params[seen, -1] = intercept
    else:
        params[seen, -1] = np.log(np.maximum(expert.class_prior_, _UNSEEN_PROBABILITY))
    unseen = np.setdiff1d(np.arange(n_classes), seen)
    if unseen.size:
        params[unseen, -1] = params[seen, -1].min() + np.log(_UNSEEN_PROBABILITY)
    return params


def _fitted_expert(template, params, n_iter):
    """A fitted ``LogisticRegression`` predicting ``softmax`` of ``params``' logits."""
    expert = clone(template)
    n_classes = params.shape[0]
    expert.classes_ = np.arange(n_classes)
    if n_classes == 2:
        difference = params[1] - params[0]
        expert.coef_ = difference[None, :-1].copy()
        expert.intercept_ = difference[-1:].copy()
    else:
        expert.coef_ = params[:, :-1].copy()
        expert.intercept_ = params[:, -1].copy()
    expert.n_features_in_ = params.shape[1] - 1
    expert.n_iter_ = np.array([n_iter], dtype=np.int32)
    return expert


def _install(mixture, objective, theta, templates, n_iter):
    """Set ``experts_`` and ``gate_`` of ``mixture`` from ``theta``."""
    _, gate, experts = objective.unpack(theta)
    mixture.experts_ = [
        _fitted_expert(template, experts[k], n_iter)
        for k, template in enumerate(templates)
    ]
    mixture.gate_.coef_ = gate[:, :-1].copy()
    mixture.gate_.intercept_ = gate[:, -1].copy()
    mixture.gate_.n_iter_ = n_iter


def run(mixture, X, y, weights, templates, responsibilities, init_index, random_state):
    """Train gate and experts jointly from ``responsibilities`` (None: the fitted
    model); return the state of the :mod:`skmoe.solvers` interface.

    The start is one M-step of EM on ``responsibilities``, so that ``init``,
    ``n_init``, ``random_state`` and ``warm_start`` mean what they mean for EM.
    ``max_iter`` is the budget of L-BFGS iterations over both phases; ``tol`` is its
    tolerance on the largest component of the gradient. ``lower_bounds_`` and
    ``effective_sample_sizes_`` hold one entry per L-BFGS iteration.
    """
    if responsibilities is not None:
        responsibilities = reseed_empty_start(responsibilities, weights, random_state)
        _m_step(mixture, X, y, weights, templates, responsibilities)
    n_classes = mixture.classes_.shape[0]
    n_features = X.shape[1]
    y = np.ascontiguousarray(y, dtype=np.intp)
    gate_alpha = 0.0 if np.isinf(mixture.gate_.C) else 1.0 / mixture.gate_.C
    objective = _JointObjective(X, y, weights, n_classes, templates, gate_alpha)
    gate = np.column_stack([mixture.gate_.coef_, mixture.gate_.intercept_])
    experts = np.stack(
        [_expert_params(expert, n_classes, n_features) for expert in mixture.experts_]
    )
    if n_classes == 2:
        experts -= experts[:, :1, :]  # the binary parametrisation: first row zero
    theta = objective.pack(gate, experts)
    lower_bounds, effective_sizes = [], []

    def record(theta):
        losses = objective.losses(theta)
        used = objective.weights(losses)
        lower_bounds.append(-float(used @ losses) / float(used.sum()))
        effective_sizes.append(effective_sample_size(used))

    def descend(theta, max_iter):
        result = minimize(
            objective,
            theta,
            jac=True,
            method="L-BFGS-B",
            callback=record,
            options={"maxiter": max_iter, "ftol": _FTOL, "gtol": mixture.tol},
        )
        converged = bool(result.success) or result.nit < max_iter
        if mixture.verbose:
            phase = "plain" if objective.plan is None else "tilted"
            print(
                f"init {init_index} {phase} phase: {result.nit} L-BFGS iterations, "
                f"objective {result.fun:.6f}, "
                f"{'converged' if converged else 'did not converge'}."
            )
        return result.x, int(result.nit), converged

    reweighting = mixture._reweighting()
    n_iter = 0
    if reweighting is None:
        theta, n_iter, converged = descend(theta, mixture.max_iter)
    else:
        n_warmup = reweighting._n_warmup(mixture.max_iter)
        converged = False
        if n_warmup:
            theta, n_iter, _ = descend(theta, n_warmup)
        for _ in range(_TILT_ROUNDS):
            if n_iter >= mixture.max_iter:
                break
            losses = objective.losses(theta)
            relevant = None
            if reweighting.filtered:
                _install(mixture, objective, theta, templates, n_iter)
                relevant = routing_relevant(
                    mixture,
                    X,
                    losses,
                    mixture._log_gate(X),
                    mixture._expert_log_likelihood(X, y),
                )
            objective.plan = reweighting._plan(
                losses, weights, relevant, random_state, classes=y
            )  # the gradient solver trains classifiers only
            objective.gradient = reweighting.gradient
            theta, round_iter, converged = descend(theta, mixture.max_iter - n_iter)
            n_iter += round_iter
            if not converged:
                break
    _install(mixture, objective, theta, templates, n_iter)
    losses = objective.losses(theta)
    used = objective.weights(losses)
    log_joint = mixture._log_gate(X) + mixture._expert_log_likelihood(X, y)
    # the weights a final expert "was fitted with": its posterior responsibilities
    # under the final data weights (what expert_calibration's cross-fitting refits on)
    expert_weights = softmax(log_joint, axis=1) * (used * weights.sum())[:, None]
    state = {
        "experts_": mixture.experts_,
        "gate_": mixture.gate_,
        "n_iter_": n_iter,
        "converged_": converged,
        "lower_bound_": -float(used @ losses) / float(used.sum()),
        "lower_bounds_": np.asarray(lower_bounds),
        "_expert_weights": expert_weights,
        **mixture._extra_state(),
    }
    if reweighting is not None:
        state["adversarial_weights_"] = used / used.sum()
        state["effective_sample_sizes_"] = np.asarray(effective_sizes)
    return state
