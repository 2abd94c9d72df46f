"""flexmix's reference data and optima, read from ``../shared/reference`` (flexmix's
data are GPL: read beside the repository, never copied into it)."""

import re
from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
needs_npreg = pytest.mark.skipif(
    not (REFERENCE / "flexmix" / "npreg.csv").is_file(),
    reason="../shared/reference/flexmix (flexmix's NPreg data) is not beside the repo",
)
needs_patent = pytest.mark.skipif(
    not (REFERENCE / "flexmix" / "patent.csv").is_file(),
    reason="../shared/reference/flexmix (flexmix's patent data) is not beside the repo",
)


def npreg():
    """flexmix's NPreg: ``x`` as a one-column X, ``yn`` as y."""
    data = np.genfromtxt(REFERENCE / "flexmix" / "npreg.csv", delimiter=",", names=True)
    return data["x"][:, None], data["yn"]


def patent():
    """flexmix's patent data: X = (RDS, lgRD), y = Patents."""
    pd = pytest.importorskip("pandas")
    data = pd.read_csv(REFERENCE / "flexmix" / "patent.csv")
    return data[["RDS", "lgRD"]].to_numpy(dtype=float), data["Patents"].to_numpy(
        dtype=float
    )


def npreg_optimum_per_row():
    """flexmix's best log-likelihood per row on NPreg with the gate on x."""
    text = (REFERENCE / "flexmix_reference.md").read_text()
    row = next(line for line in text.splitlines() if "concomitant multinomial" in line)
    return float(re.findall(r"-?\d+\.\d+", row)[-1])


def patent_optimum():
    """flexmix's log-likelihood and BIC of the patent model."""
    text = (REFERENCE / "flexmix_reference.md").read_text()
    section = text[text.index("`patent` vignette") :]
    log_likelihood = float(re.search(r"log-likelihood (-\d+\.\d+)", section).group(1))
    bic = float(re.search(r"BIC (\d+\.\d+)", section).group(1))
    return log_likelihood, bic
