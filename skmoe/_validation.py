"""Input validation errors that say what to do about them, for the mixtures.

scikit-learn's messages for NaN in ``X`` and for string columns are written for a
single estimator: the NaN message suggests estimators that accept missing values
natively (the user's experts may well be such estimators, yet the mixture's gate
is not), and the string message gives no hint at all. :func:`explained_input_errors`
re-raises them with the mixture's reason and the preprocessing that fixes them.
:func:`check_ids` rejects missing or 2-D domain labels and client identifiers, which
``np.unique`` would sort into a bare ``TypeError`` or a group of their own.
"""

from contextlib import contextmanager

import numpy as np
from sklearn.utils import get_tags
from sklearn.utils.validation import column_or_1d


def _experts_accept_nan(estimator):
    experts = estimator.expert if isinstance(estimator.expert, list) else [
        estimator._default_expert() if estimator.expert is None else estimator.expert
    ]
    return all(get_tags(expert).input_tags.allow_nan for expert in experts)


@contextmanager
def explained_input_errors(estimator):
    """Re-raise the ValueError of ``validate_data`` on NaN or strings with a remedy."""
    try:
        yield
    except ValueError as error:
        message = str(error)
        name = type(estimator).__name__
        if "could not convert string to float" in message:
            raise ValueError(
                f"{message}. {name} takes numeric features: encode the categorical "
                "columns first, e.g. in a pipeline with a ColumnTransformer, "
                "make_pipeline(make_column_transformer((OneHotEncoder("
                "handle_unknown='ignore'), categorical_columns), "
                "remainder='passthrough'), mixture) (its sparse output is taken "
                "as it is with solver='em')."
            ) from error
        if message.startswith("Input X contains NaN"):
            experts = (
                "The experts would accept missing values, but the gate"
                if _experts_accept_nan(estimator)
                else "The gate"
            )
            raise ValueError(
                f"{message.splitlines()[0]} {experts} of {name} (and its k-means "
                "start) needs finite X. Impute the features before the mixture, "
                "e.g. make_pipeline(SimpleImputer(add_indicator=True), mixture): the "
                "indicator columns keep the missingness for the gate to route on."
            ) from error
        raise


def _is_missing(value):
    """Whether one identifier is missing: None, NaN, NaT or pandas' NA."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def check_ids(ids, name):
    """Return the array ``ids`` as 1-D, with errors naming ``name``.

    Domain labels and client identifiers are sorted with ``np.unique``, where None
    next to strings raises a bare ``TypeError`` and a NaN would silently become one
    more domain or client; and ``column_or_1d`` calls every input ``y``.
    """
    if ids.ndim != 1 and not (ids.ndim == 2 and ids.shape[1] == 1):
        raise ValueError(
            f"{name} must be 1-D, one identifier per sample; got an array of shape "
            f"{ids.shape}."
        )
    ids = column_or_1d(ids, warn=True, input_name=name)
    if ids.dtype.kind in "fc":
        missing = np.isnan(ids)
    elif ids.dtype.kind in "mM":
        missing = np.isnat(ids)
    elif ids.dtype.kind == "O":
        missing = np.fromiter((_is_missing(value) for value in ids), dtype=bool,
                              count=ids.shape[0])
    else:
        return ids
    if missing.any():
        first = int(np.argmax(missing))
        raise ValueError(
            f"{name} must not hold missing values (None or NaN); got "
            f"{name}[{first}] = {ids[first]!r} ({int(missing.sum())} missing of "
            f"{ids.shape[0]})."
        )
    return ids
