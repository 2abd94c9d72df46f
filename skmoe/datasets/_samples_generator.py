"""Generators of multi-domain data with a known kind of distribution shift.

:func:`make_shifted_classification` and :func:`make_shifted_regression` draw samples
from several domains: domain 0 is the source, and the others are shifted from it by a
growing amount of one kind of shift (covariate, label, concept or subspace), so that
the last domain is shifted by ``severity``. Each returns ``X, y, domains``, the
convention of scikit-learn's ``make_*`` functions with the domain of each row added.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

# Mean shift, in standard deviations, of the most shifted domain at severity=1.
_MEAN_SHIFT = 2.0
# Norm of the label weights (classification) or regression coefficients.
_WEIGHT_NORM = 2.0
# Label shift: the class prior of a domain of shift strength s puts this share, times
# s, on its favoured class and spreads the rest uniformly, so the most shifted domain
# at severity=1 holds 0.9 + 0.1 / n_classes of that class (95 % for two classes).
_LABEL_SKEW = 0.9

_SHIFT_DOC = """\
    shift : {"covariate", "label", "concept", "subspace"}, default="covariate"
        Kind of shift between domains. With ``s`` the shift strength of a domain
        (0 for domain 0, ``severity`` for the last, linear in between):

        - ``"covariate"``: ``P(X)`` changes, ``P(y | X)`` does not. The features are
          standard normal, their mean moved by ``2 * s`` standard deviations along a
          random direction.
        - ``"label"``: ``P(y)`` changes, ``P(X | y)`` does not.
        - ``"concept"``: ``P(y | X)`` changes, ``P(X)`` does not: the label weights
          are rotated by an angle ``s * pi / 2`` in a random plane that contains
          them.
        - ``"subspace"``: covariate shift confined to a subspace orthogonal to the
          one ``y`` depends on. Half of the latent dimensions (rounded down, at
          least one) carry the signal; the others are moved by ``2 * s`` and
          stretched by ``1 + s``; a random rotation then mixes all of them into
          the features, so the shift is not aligned with the axes. ``P(y | X)``
          and ``P(y)`` are the same in every domain.
    severity : float in [0, 1], default=1.0
        Shift strength of the last domain."""


def _domain_of_each_sample(n_samples, n_domains, severity):
    if n_samples < n_domains:
        raise ValueError(
            f"Expected n_samples >= n_domains, got n_samples={n_samples} and "
            f"n_domains={n_domains}."
        )
    sizes = [len(part) for part in np.array_split(np.arange(n_samples), n_domains)]
    domains = np.repeat(np.arange(n_domains), sizes)
    strength = severity * domains / max(n_domains - 1, 1)
    return domains, strength


def _unit(vector):
    return vector / np.linalg.norm(vector)


def _orthogonal_unit(rng, direction):
    other = rng.standard_normal(direction.shape[0])
    return _unit(other - (other @ direction) * direction)


def _rotate_in_plane(Z, first, second, angle):
    """Rotate each row of ``Z`` by its own angle in the plane of two unit vectors."""
    along_first = Z @ first
    along_second = Z @ second
    cos, sin = np.cos(angle), np.sin(angle)
    return (
        Z
        + np.outer((cos - 1.0) * along_first - sin * along_second, first)
        + np.outer(sin * along_first + (cos - 1.0) * along_second, second)
    )


def _shifted_latent(rng, weights, strength, shift):
    """Latent features, the weights the outcome uses, and the feature rotation.

    ``weights`` has one row per output (class logit or regression); the outcome of a
    sample is computed from ``rotated_Z @ weights.T`` by the caller.
    """
    n_samples, n_features = strength.shape[0], weights.shape[1]
    Z = rng.standard_normal((n_samples, n_features))
    rotation = np.eye(n_features)
    outcome_Z = Z
    if shift == "covariate":
        Z = Z + _MEAN_SHIFT * np.outer(strength, _unit(rng.standard_normal(n_features)))
        outcome_Z = Z
    elif shift == "concept":
        first = _unit(weights[-1] - weights[0] if weights.shape[0] > 1 else weights[0])
        second = _orthogonal_unit(rng, first)
        outcome_Z = _rotate_in_plane(Z, first, second, strength * np.pi / 2)
    elif shift == "subspace":
        n_signal = max(1, n_features // 2)
        weights[:, n_signal:] = 0.0
        nuisance_direction = _unit(rng.standard_normal(n_features - n_signal))
        Z[:, n_signal:] = Z[:, n_signal:] * (1.0 + strength[:, None]) + (
            _MEAN_SHIFT * np.outer(strength, nuisance_direction)
        )
        outcome_Z = Z
        rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    return Z @ rotation.T, outcome_Z @ weights.T


def _sample_classes(rng, logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(proba, axis=1)
    draws = rng.uniform(size=(logits.shape[0], 1))
    return np.minimum((draws > cumulative).sum(axis=1), logits.shape[1] - 1)


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 2, None, closed="left")],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "n_domains": [Interval(Integral, 2, None, closed="left")],
        "shift": [StrOptions({"covariate", "label", "concept", "subspace"})],
        "severity": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_shifted_classification(
    n_samples=1000,
    *,
    n_features=5,
    n_classes=2,
    n_domains=3,
    shift="covariate",
    severity=1.0,
    random_state=None,
):
    """Classification data from several domains with one kind of shift between them.

    The samples are split as evenly as possible over the domains, in order: the
    first rows belong to domain 0. Without shift, the features are standard normal
    and the classes follow a multinomial logistic model whose weight vectors have
    norm 2 (a Bayes accuracy of roughly 75-85 % for two classes). For label shift,
    classes are drawn first, from a prior that puts ``0.9 s`` on one class of the
    domain and spreads ``1 - 0.9 s`` uniformly (``s`` the domain's shift strength:
    uniform in domain 0; in the last domain at severity 1, ``0.9 + 0.1 / n_classes``
    of one class, 95 % for two classes), and the features given the class are normal
    with unit variance around a class mean of norm 1.5.

    Parameters
    ----------
    n_samples : int, default=1000
        Total number of samples.
    n_features : int, default=5
        Number of features, at least 2.
    n_classes : int, default=2
        Number of classes.
    n_domains : int, default=3
        Number of domains, at least 2.
%(shift_doc)s
    random_state : int, RandomState instance or None, default=None
        Pass an int for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Integer class labels in ``range(n_classes)``.
    domains : ndarray of shape (n_samples,)
        Integer domain of each sample in ``range(n_domains)``; 0 is the source.

    See Also
    --------
    make_shifted_regression : the regression twin.
    make_routing_shift : a shift under which soft-routed mixtures lose calibration.
    skmoe.model_selection.LeaveOneDomainOut : evaluate across the domains.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.datasets import make_shifted_classification
    >>> X, y, domains = make_shifted_classification(
    ...     600, shift="label", n_domains=2, random_state=0
    ... )
    >>> X.shape, np.bincount(domains).tolist()
    ((600, 5), [300, 300])
    >>> [np.bincount(y[domains == d]).tolist() for d in (0, 1)]
    [[144, 156], [17, 283]]
    """
    rng = check_random_state(random_state)
    domains, strength = _domain_of_each_sample(n_samples, n_domains, severity)
    if shift == "label":
        skewed = np.arange(n_domains) % n_classes
        domain_strength = severity * np.arange(n_domains) / (n_domains - 1)
        priors = np.outer(1.0 - _LABEL_SKEW * domain_strength, np.ones(n_classes))
        priors /= n_classes
        priors[np.arange(n_domains), skewed] += _LABEL_SKEW * domain_strength
        cumulative = np.cumsum(priors[domains], axis=1)
        draws = rng.uniform(size=(n_samples, 1))
        y = np.minimum((draws > cumulative).sum(axis=1), n_classes - 1)
        class_means = 1.5 * np.array(
            [_unit(rng.standard_normal(n_features)) for _ in range(n_classes)]
        )
        X = class_means[y] + rng.standard_normal((n_samples, n_features))
        return X, y, domains
    weights = _WEIGHT_NORM * np.array(
        [_unit(rng.standard_normal(n_features)) for _ in range(n_classes)]
    )
    if n_classes == 2:
        # one logit direction, as in logistic regression
        weights[0] = 0.0
    X, logits = _shifted_latent(rng, weights, strength, shift)
    return X, _sample_classes(rng, logits), domains


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 2, None, closed="left")],
        "n_domains": [Interval(Integral, 2, None, closed="left")],
        "shift": [StrOptions({"covariate", "label", "concept", "subspace"})],
        "severity": [Interval(Real, 0, 1, closed="both")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_shifted_regression(
    n_samples=1000,
    *,
    n_features=5,
    n_domains=3,
    shift="covariate",
    severity=1.0,
    noise=0.5,
    random_state=None,
):
    """Regression data from several domains with one kind of shift between them.

    The twin of :func:`make_shifted_classification`: without shift the features are
    standard normal and ``y = X @ coef + noise * e`` with ``coef`` of norm 2 and
    standard normal ``e``. For label (target) shift, ``y`` is drawn first,
    ``N(2 * s, 1)`` in a domain of shift strength ``s``, and the features given
    ``y`` are ``y * a + N(0, I)`` for a fixed unit vector ``a``.

    Parameters
    ----------
    n_samples : int, default=1000
        Total number of samples.
    n_features : int, default=5
        Number of features, at least 2.
    n_domains : int, default=3
        Number of domains, at least 2.
%(shift_doc)s
    noise : float, default=0.5
        Standard deviation of the Gaussian noise on ``y`` (not used by label shift).
    random_state : int, RandomState instance or None, default=None
        Pass an int for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    domains : ndarray of shape (n_samples,)
        Integer domain of each sample in ``range(n_domains)``; 0 is the source.

    See Also
    --------
    make_shifted_classification : the classification twin.

    Examples
    --------
    >>> from skmoe.datasets import make_shifted_regression
    >>> X, y, domains = make_shifted_regression(
    ...     900, shift="label", random_state=0
    ... )
    >>> [round(float(y[domains == d].mean()), 1) for d in (0, 1, 2)]
    [0.0, 0.9, 1.9]
    """
    rng = check_random_state(random_state)
    domains, strength = _domain_of_each_sample(n_samples, n_domains, severity)
    if shift == "label":
        y = _MEAN_SHIFT * strength + rng.standard_normal(n_samples)
        direction = _unit(rng.standard_normal(n_features))
        X = np.outer(y, direction) + rng.standard_normal((n_samples, n_features))
        return X, y, domains
    coef = _WEIGHT_NORM * _unit(rng.standard_normal(n_features))[None, :]
    X, signal = _shifted_latent(rng, coef, strength, shift)
    return X, signal[:, 0] + noise * rng.standard_normal(n_samples), domains


# the two generators share the description of the kinds of shift
for _generator in (make_shifted_classification, make_shifted_regression):
    _generator.__doc__ = _generator.__doc__.replace("%(shift_doc)s", _SHIFT_DOC)
