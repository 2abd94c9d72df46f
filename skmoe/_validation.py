"""Input validation errors that say what to do about them, for the mixtures.

scikit-learn's messages for NaN in ``X`` and for string columns are written for a
single estimator: the NaN message suggests estimators that accept missing values
natively (the user's experts may well be such estimators, yet the mixture's gate
is not), and the string message gives no hint at all. :func:`explained_input_errors`
re-raises them with the mixture's reason and the preprocessing that fixes them.
"""

from contextlib import contextmanager

from sklearn.utils import get_tags


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
