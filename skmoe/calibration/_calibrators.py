"""Calibration maps from class-probability matrices to calibrated ones.

:class:`ProbabilityCalibrator` is fitted on (cross-fitted) predicted probabilities and
the true classes, with sample weights, and maps new probability matrices to calibrated
ones: one temperature for all classes, or Platt's sigmoid or isotonic regression per
class (one-vs-rest, renormalised as :class:`~sklearn.calibration.CalibratedClassifierCV`
does). The mixtures of experts fit one per expert on its routed view
(``expert_calibration``).
"""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import BaseEstimator
from sklearn.calibration import _SigmoidCalibration
from sklearn.isotonic import IsotonicRegression
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

# Probabilities are clipped at machine epsilon before taking logits, as
# sklearn.metrics.log_loss clips them: an expert that never saw a class gives it
# probability zero, and a logit of log(tiny) = -708 on one sample of that class would
# let that sample alone drive the temperature to its bound.
_LOG_EPS = float(np.log(np.finfo(np.float64).eps))
# Search range of log T: temperatures from about 0.007 to 150.
_LOG_TEMPERATURE_BOUNDS = (-5.0, 5.0)


def _logits(proba):
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(proba), _LOG_EPS)


class ProbabilityCalibrator(BaseEstimator):
    """Calibration map of predicted class probabilities, fitted with sample weights.

    Parameters
    ----------
    method : {"temperature", "sigmoid", "isotonic"}, default="temperature"
        ``"temperature"``: one temperature ``T`` for all classes, the probabilities
        mapped to ``softmax(log p / T)``; ``T`` minimises the weighted log loss
        (``scipy.optimize.minimize_scalar`` on ``log T``). ``"sigmoid"`` (Platt) and
        ``"isotonic"``: a map per class, one-vs-rest, the results renormalised to sum
        one (a row whose maps all give zero becomes uniform); with two classes only
        the second class is mapped and the first gets the complement, as in
        :class:`~sklearn.calibration.CalibratedClassifierCV`. Isotonic maps are
        bounded to ``[1 / (n + 2), 1 - 1 / (n + 2)]``, ``n`` the effective number of
        samples ``(sum w)**2 / sum w**2``, so no class gets probability exactly zero
        (unlike ``CalibratedClassifierCV``, whose isotonic maps reach 0 and 1).

    Attributes
    ----------
    n_classes_ : int
        Number of columns of the probability matrices.
    temperature_ : float
        The fitted temperature (``method="temperature"`` only).
    calibrators_ : list of estimators
        The fitted per-class maps, one per mapped class (``"sigmoid"`` and
        ``"isotonic"`` only).

    See Also
    --------
    sklearn.calibration.CalibratedClassifierCV : calibrates a classifier.

    References
    ----------
    .. [1] Guo, Pleiss, Sun and Weinberger (2017). On calibration of modern neural
       networks. ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.calibration import ProbabilityCalibrator
    >>> rng = np.random.default_rng(0)
    >>> p_true = rng.uniform(0.2, 0.8, size=2000)
    >>> y = (rng.uniform(size=2000) < p_true).astype(int)
    >>> overconfident = np.clip(0.5 + 2 * (p_true - 0.5), 0.01, 0.99)
    >>> proba = np.column_stack([1 - overconfident, overconfident])
    >>> calibrator = ProbabilityCalibrator(method="temperature").fit(proba, y)
    >>> bool(calibrator.temperature_ > 1)
    True
    """

    _parameter_constraints = {
        "method": [StrOptions({"temperature", "sigmoid", "isotonic"})],
    }

    def __init__(self, method="temperature"):
        self.method = method

    def fit(self, proba, y, sample_weight=None):
        """Fit the map on predicted probabilities and the true classes.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Predicted probabilities, ideally out-of-sample.
        y : array-like of shape (n_samples,)
            True classes as column indices of ``proba`` (0 to ``n_classes - 1``).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, not all zero.

        Returns
        -------
        self : ProbabilityCalibrator
            The fitted map.
        """
        self._validate_params()
        proba = np.asarray(proba, dtype=np.float64)
        y = np.asarray(y)
        if proba.ndim != 2 or proba.shape[1] < 2 or y.shape != (proba.shape[0],):
            raise ValueError(
                "proba must have shape (n_samples, n_classes) with n_classes >= 2 and "
                f"y shape (n_samples,); got {proba.shape} and {y.shape}."
            )
        n_classes = proba.shape[1]
        if np.any((y < 0) | (y >= n_classes)):
            raise ValueError(f"y must hold column indices 0 to {n_classes - 1}.")
        weights = (
            np.ones(y.shape[0])
            if sample_weight is None
            else np.asarray(sample_weight, dtype=np.float64)
        )
        if not weights.sum() > 0:
            raise ValueError("sample_weight must not sum to zero.")
        self.n_classes_ = n_classes
        if self.method == "temperature":
            self.temperature_ = self._fit_temperature(_logits(proba), y, weights)
            return self
        columns = [1] if n_classes == 2 else range(n_classes)
        # isotonic regression gives exactly 0 (or 1) to a block of scores holding no
        # sample of the class: kept at 1 / (n + 2) from the bounds (the rule of
        # succession, n the effective sample size), so that no class gets probability
        # zero and the log loss of a calibrated model stays finite
        n_effective = weights.sum() ** 2 / (weights**2).sum()
        floor = 1.0 / (n_effective + 2.0)
        self.calibrators_ = []
        for column in columns:
            calibrator = (
                _SigmoidCalibration()
                if self.method == "sigmoid"
                else IsotonicRegression(
                    out_of_bounds="clip", y_min=floor, y_max=1.0 - floor
                )
            )
            target = (y == column).astype(np.float64)
            self.calibrators_.append(
                calibrator.fit(proba[:, column], target, sample_weight=weights)
            )
        return self

    @staticmethod
    def _fit_temperature(logits, y, weights):
        rows = np.arange(y.shape[0])
        total = weights.sum()

        def log_loss(log_temperature):
            log_proba = log_softmax(logits / np.exp(log_temperature), axis=1)
            return -float(weights @ log_proba[rows, y]) / total

        result = minimize_scalar(
            log_loss, bounds=_LOG_TEMPERATURE_BOUNDS, method="bounded"
        )
        return float(np.exp(result.x))

    def predict(self, proba):
        """Calibrated probabilities.

        Parameters
        ----------
        proba : array-like of shape (n_samples, n_classes)
            Predicted probabilities of the model the map was fitted for.

        Returns
        -------
        calibrated : ndarray of shape (n_samples, n_classes)
            Calibrated probabilities; each row sums to one.
        """
        check_is_fitted(self, "n_classes_")
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != self.n_classes_:
            raise ValueError(
                f"proba must have {self.n_classes_} columns, as in fit; got shape "
                f"{proba.shape}."
            )
        if self.method == "temperature":
            return np.exp(log_softmax(_logits(proba) / self.temperature_, axis=1))
        if self.n_classes_ == 2:
            positive = np.clip(self.calibrators_[0].predict(proba[:, 1]), 0.0, 1.0)
            return np.column_stack([1.0 - positive, positive])
        calibrated = np.column_stack(
            [
                calibrator.predict(proba[:, column])
                for column, calibrator in enumerate(self.calibrators_)
            ]
        )
        calibrated = np.clip(calibrated, 0.0, None)
        totals = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / self.n_classes_)
        return np.divide(calibrated, totals, out=uniform, where=totals > 0)
