"""What a deployed DDOME federation needs besides Flower: files, data and settings.

A data owner's SuperNode reads its partition from a file (:func:`load_partition`), and
server and clients load the frozen common expert (and optionally the expert template)
from joblib files whose SHA-256 digests they compare, so that a client never embeds
its data with another model than the server's. The Flower app project (the
``pyproject.toml`` that ``flwr run`` reads) ships inside the package
(:func:`flower_app_path`). Nothing here imports ``flwr``.
"""

import csv
import hashlib
import tomllib
from pathlib import Path

import joblib
import numpy as np

# run configuration key -> DDOMEClassifier parameter
ESTIMATOR_KEYS = {
    "n-experts": "n_experts",
    "top-k": "top_k",
    "anchors": "anchors",
    "share-label-counts": "share_label_counts",
    "anchor-fraction": "anchor_fraction",
    "expert-input": "expert_input",
    "expert-init": "expert_init",
    "guard-alpha": "guard_alpha",
    "validation": "validation",
    "validation-fraction": "validation_fraction",
    "n-rounds": "n_rounds",
    "clients-per-round": "clients_per_round",
    "local-epochs": "local_epochs",
    "gate-learning-rate": "gate_learning_rate",
    "gate-batch-size": "gate_batch_size",
    "embedding": "embedding",
    "random-state": "random_state",
}

_PARQUET_MISSING = (
    "Reading a Parquet partition needs pyarrow: pip install pyarrow "
    "(or store the partition as .csv or .npz)."
)


def flower_app_path():
    """The directory of skmoe's Flower app, to pass to ``flwr run``.

    The directory holds only a ``pyproject.toml``: its ``[tool.flwr.app]`` components
    are the ``ServerApp`` and ``ClientApp`` of the installed skmoe, and its
    ``[tool.flwr.app.config]`` the run configuration (DDOME's parameters, the common
    expert's file, where the server saves the model), which ``flwr run --run-config``
    overrides. Copy the directory to edit the defaults.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> from skmoe.federated import flower_app_path
    >>> (flower_app_path() / "pyproject.toml").is_file()
    True
    """
    return Path(__file__).resolve().parent / "app"


def flower_app_config():
    """The default run configuration of the Flower app, as a dict."""
    with open(flower_app_path() / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["flwr"]["app"]["config"]


def _parse_label(text):
    """A CSV label as int when it reads as one, else float, else the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _split_label(columns, label, path):
    """Feature matrix and label vector from named columns (a dict of arrays)."""
    if label not in columns:
        raise ValueError(
            f"The partition {path} has no label column {label!r} (label={label!r}); "
            f"its columns are {list(columns)}."
        )
    features = [name for name in columns if name != label]
    if not features:
        raise ValueError(f"The partition {path} has no feature column.")
    X = np.column_stack(
        [np.asarray(columns[name], dtype=np.float64) for name in features]
    )
    y = np.asarray(columns[label])
    # Flower sends fixed-width strings, not Python objects (Parquet's strings)
    return X, y.astype(str) if y.dtype == object else y


def load_partition(path, *, label="y"):
    """Read one data owner's samples from a .npz, .csv or .parquet file.

    Parameters
    ----------
    path : str or path-like
        ``.npz``: arrays ``X`` (n_samples, n_features) and ``y`` (n_samples,).
        ``.csv``: a header row, then one sample per row; every column but ``label``
        is a numeric feature, in file order. ``.parquet`` (needs pyarrow): the same
        columns.
    label : str, default="y"
        Name of the label column of a CSV or Parquet file. CSV labels become
        integers when they all read as integers, floats when they all read as
        numbers, and strings otherwise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skmoe.federated import load_partition
    >>> path = os.path.join(tempfile.mkdtemp(), "part0.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("a,b,y\\n0.5,1,cat\\n2,3,dog\\n")
    >>> X, y = load_partition(path)
    >>> X.tolist(), y.tolist()
    ([[0.5, 1.0], [2.0, 3.0]], ['cat', 'dog'])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No partition file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"X", "y"} - set(arrays.files)
            if missing:
                raise ValueError(
                    f"The partition {path} lacks the arrays {sorted(missing)}; "
                    "a .npz partition holds X and y."
                )
            X, y = np.asarray(arrays["X"], dtype=np.float64), arrays["y"]
    elif suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
        if not rows:
            raise ValueError(f"The partition {path} is empty.")
        header, body = rows[0], [row for row in rows[1:] if row]
        columns = {name: [row[j] for row in body] for j, name in enumerate(header)}
        if label in columns:
            parsed = [_parse_label(text) for text in columns[label]]
            kinds = {type(value) for value in parsed}
            if kinds == {int}:
                columns[label] = np.array(parsed, dtype=np.int64)
            elif kinds <= {int, float}:
                columns[label] = np.array(parsed, dtype=np.float64)
            else:
                columns[label] = np.array(columns[label], dtype=str)
        X, y = _split_label(columns, label, path)
    elif suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ImportError(_PARQUET_MISSING) from exc
        table = pq.read_table(path)
        columns = {name: table[name].to_numpy() for name in table.column_names}
        X, y = _split_label(columns, label, path)
    else:
        raise ValueError(
            f"Unknown partition format {path.suffix!r} ({path}); expected .npz, "
            ".csv or .parquet."
        )
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"The partition {path} holds X of shape {X.shape} and y of shape "
            f"{y.shape}; expected (n_samples, n_features) and (n_samples,)."
        )
    return X, y


def file_digest(path):
    """SHA-256 of a file's bytes, as 32 unsigned bytes (an array that Flower sends)."""
    digest = hashlib.sha256(Path(path).read_bytes()).digest()
    return np.frombuffer(digest, dtype=np.uint8).copy()


def load_verified(path, digest, what):
    """Unpickle ``path`` after checking that its digest is the server's.

    Only files the data owner placed on its own machine are unpickled; the server
    sends their digest, never their content.
    """
    local = bytes(file_digest(path)).hex()
    expected = bytes(np.asarray(digest, dtype=np.uint8)).hex()
    if local != expected:
        raise ValueError(
            f"The {what} at {path} differs from the server's (SHA-256 "
            f"{local[:12]}... here, {expected[:12]}... on the server): every node "
            "must hold the same file."
        )
    return joblib.load(path)
