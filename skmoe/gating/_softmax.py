"""The built-in gate: multinomial logistic regression on hard or soft targets."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from skmoe._kernels._boundary import as_input
from skmoe._kernels.gating import (
    blocked_softmax_hessp,
    blocked_softmax_log_proba,
    blocked_softmax_loss_grad,
    softmax_hessp,
    softmax_log_proba,
    softmax_loss_grad,
)

# Sparse formats the gate takes; CSC is converted to CSR once (a sparse copy), since
# the blocked kernels slice rows.
_SPARSE_FORMATS = ["csr", "csc"]


def _row_sliceable(X):
    """``X`` itself when dense or CSR; a CSR copy of any other sparse matrix."""
    return X.tocsr() if sp.issparse(X) and X.format != "csr" else X


class SoftmaxGate(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression fitted on hard labels or soft targets.

    This is the built-in gate of the mixtures of experts. It minimises the weighted
    cross-entropy to the targets plus an L2 penalty on the coefficients (not on the
    intercepts)::

        sum_i s_i sum_k T_ik (logsumexp(z_i) - z_ik) + ||coef||^2 / (2 C),
        z_i = intercept + coef @ x_i

    where ``T`` is either the one-hot encoding of class labels or a matrix of soft
    targets (for the mixture: the E-step's responsibilities). With one-hot targets and
    three or more classes the optimum is that of
    :class:`~sklearn.linear_model.LogisticRegression` with the same ``C``. Loss,
    gradient and Hessian-vector products are numba kernels that make one pass over the
    data without forming the ``(n_samples, n_classes)`` score matrix; the optimiser is
    L-BFGS or Newton-CG from :func:`scipy.optimize.minimize`. Sparse ``X`` (CSR or
    CSC) is never densified: its rows are scored in blocks by sparse matrix products.

    Parameters
    ----------
    C : float, default=1.0
        Inverse strength of the L2 penalty, as in ``LogisticRegression``. ``np.inf``
        removes the penalty.
    solver : {"lbfgs", "newton-cg"}, default="lbfgs"
        ``"lbfgs"`` uses loss and gradient; ``"newton-cg"`` also uses exact
        Hessian-vector products and takes fewer, dearer iterations.
    max_iter : int, default=100
        Maximum number of iterations of the optimiser.
    tol : float, default=1e-6
        Stop when the largest component of the gradient of the objective, divided
        by the total sample weight, falls below ``tol``.
    warm_start : bool, default=False
        Start from the previous solution when refitted with the same number of
        classes and features. The mixtures set it on their own copy of the gate so
        that each M-step starts from the last.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; ``arange(n_classes)`` when fitted on soft targets.
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    n_iter_ : int
        Iterations the optimiser used in the last fit.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when ``X`` has feature names that are all strings.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : the same model on hard labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.gating import SoftmaxGate
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> soft_targets = np.array([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.1, 0.9]])
    >>> gate = SoftmaxGate(C=10.0).fit(X, soft_targets)
    >>> gate.predict_proba(X).round(2)
    array([[0.89, 0.11],
           [0.67, 0.33],
           [0.33, 0.67],
           [0.11, 0.89]])
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="right")],
        "solver": [StrOptions({"lbfgs", "newton-cg"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
    }

    def __init__(
        self, C=1.0, *, solver="lbfgs", max_iter=100, tol=1e-6, warm_start=False
    ):
        self.C = C
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the gate.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Class labels, or a matrix of non-negative soft targets (one column per
            class, usually rows summing to one).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : SoftmaxGate
        """
        y_shape = np.shape(np.asarray(y))
        soft = len(y_shape) == 2 and y_shape[1] > 1
        if soft:
            X, targets = validate_data(
                self,
                X,
                y,
                dtype=[np.float64, np.float32],
                accept_sparse=_SPARSE_FORMATS,
                multi_output=True,
                y_numeric=True,
            )
            targets = np.asarray(targets, dtype=np.float64)
            if np.any(targets < 0):
                raise ValueError(
                    "Soft targets must be non-negative; got a minimum of "
                    f"{targets.min()!r}."
                )
            self.classes_ = np.arange(targets.shape[1])
        else:
            X, y = validate_data(
                self,
                X,
                y,
                dtype=[np.float64, np.float32],
                accept_sparse=_SPARSE_FORMATS,
            )
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            self.classes_, encoded = np.unique(y, return_inverse=True)
            if self.classes_.shape[0] < 2:
                raise ValueError(
                    "SoftmaxGate needs samples of at least 2 classes; got one class: "
                    f"{self.classes_[0]!r}."
                )
            targets = np.zeros((X.shape[0], self.classes_.shape[0]))
            targets[np.arange(X.shape[0]), encoded] = 1.0
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        self._fit_targets(X, targets, sample_weight)
        return self

    def _fit_targets(self, X, targets, sample_weight):
        n_classes = targets.shape[1]
        n_features = X.shape[1]
        shape = (n_classes, n_features)
        if self.warm_start and getattr(self, "coef_", np.empty(0)).shape == shape:
            params = np.concatenate([self.coef_.ravel(), self.intercept_])
        else:
            params = np.zeros(n_classes * n_features + n_classes)
        objective = _GateObjective(X, targets, sample_weight, self.C)
        options = {"maxiter": self.max_iter}
        if self.solver == "lbfgs":
            options.update(gtol=self.tol, ftol=64 * np.finfo(float).eps)
            result = minimize(
                objective.loss_grad,
                params,
                jac=True,
                method="L-BFGS-B",
                options=options,
            )
        else:
            options.update(xtol=self.tol)
            result = minimize(
                objective.loss_grad,
                params,
                jac=True,
                hessp=objective.hessp,
                method="Newton-CG",
                options=options,
            )
        if not np.all(np.isfinite(result.x)):
            raise FloatingPointError(
                "SoftmaxGate diverged to non-finite coefficients; scale the features "
                "or lower C."
            )
        self.coef_ = result.x[: n_classes * n_features].reshape(shape)
        self.intercept_ = result.x[n_classes * n_features :].copy()
        self.n_iter_ = int(result.nit)
        if not result.success and result.nit >= self.max_iter:
            import warnings

            warnings.warn(
                f"SoftmaxGate did not converge in max_iter={self.max_iter} iterations.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def predict_log_proba(self, X):
        """Log-probabilities of the classes (for a gate: of the experts).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            reset=False,
            dtype=[np.float64, np.float32],
            accept_sparse=_SPARSE_FORMATS,
        )
        out = np.empty((X.shape[0], self.coef_.shape[0]))
        if sp.issparse(X):
            return blocked_softmax_log_proba(
                _row_sliceable(X), self.coef_, self.intercept_, out
            )
        return softmax_log_proba(X, self.coef_, self.intercept_, out)

    def predict_proba(self, X):
        """Probabilities of the classes (for a gate: the routing weights).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return np.exp(self.predict_log_proba(X))

    def decision_function(self, X):
        """Scores ``intercept_ + X @ coef_.T``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            For two classes, the score of the second class minus that of the first,
            as for every binary classifier of scikit-learn.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            reset=False,
            dtype=[np.float64, np.float32],
            accept_sparse=_SPARSE_FORMATS,
        )
        scores = np.asarray(X @ self.coef_.T) + self.intercept_
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        log_proba = self.predict_log_proba(X)
        return self.classes_[np.argmax(log_proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        tags.input_tags.sparse = True
        return tags


class _GateObjective:
    """Penalised objective of the gate, scaled by the total weight for conditioning."""

    def __init__(self, X, targets, sample_weight, C):
        # dense X: the row-wise kernels (the blocked ones were measured no faster),
        # given X in their one argument type once, not at every iteration
        sparse = sp.issparse(X)
        self.X = _row_sliceable(X) if sparse else as_input(X)
        self._loss_grad = blocked_softmax_loss_grad if sparse else softmax_loss_grad
        self._hessp = blocked_softmax_hessp if sparse else softmax_hessp
        self.targets = as_input(targets)
        self.sample_weight = as_input(sample_weight)
        n_classes, n_features = targets.shape[1], X.shape[1]
        self.n_coef = n_classes * n_features
        self.shape = (n_classes, n_features)
        self.scale = 1.0 / max(float(sample_weight.sum()), np.finfo(float).tiny)
        self.alpha = 0.0 if np.isinf(C) else 1.0 / C
        self.grad_coef = np.empty(self.shape)
        self.grad_intercept = np.empty(n_classes)

    def _split(self, params):
        coef = params[: self.n_coef].reshape(self.shape)
        return coef, params[self.n_coef :]

    def loss_grad(self, params):
        coef, intercept = self._split(params)
        loss = self._loss_grad(
            self.X,
            self.targets,
            self.sample_weight,
            coef,
            intercept,
            self.grad_coef,
            self.grad_intercept,
        )
        loss += 0.5 * self.alpha * np.dot(params[: self.n_coef], params[: self.n_coef])
        grad = np.concatenate(
            [(self.grad_coef + self.alpha * coef).ravel(), self.grad_intercept]
        )
        return loss * self.scale, grad * self.scale

    def hessp(self, params, vector):
        coef, intercept = self._split(params)
        vec_coef, vec_intercept = self._split(vector)
        out_coef = np.empty(self.shape)
        out_intercept = np.empty(self.shape[0])
        self._hessp(
            self.X,
            self.targets,
            self.sample_weight,
            coef,
            intercept,
            np.ascontiguousarray(vec_coef),
            np.ascontiguousarray(vec_intercept),
            out_coef,
            out_intercept,
        )
        out_coef += self.alpha * vec_coef
        return np.concatenate([out_coef.ravel(), out_intercept]) * self.scale
