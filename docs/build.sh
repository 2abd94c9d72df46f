#!/usr/bin/env bash
# Build the HTML documentation with every warning treated as an error.
#
#   bash docs/build.sh            # -> docs/_build/html/index.html
#
# Environment:
#   PYTHON            the interpreter with skmoe and the "docs" extra (default: python)
#   SPHINX_JOBS       parallel reader processes (default: 1; the examples run in one
#                     process anyway, and parallel reading saves little here)
#   SKMOE_DOCS_CLEAN  1 (default) removes the previous build first, so that CI always
#                     builds from scratch; 0 keeps it for a fast incremental rebuild
#   SKMOE_DOCS_FETCH_INVENTORIES=1 tries to download the intersphinx inventories into
#                     docs/_intersphinx/ (see conf.py); without it the build never
#                     touches the network
#
# A broken docstring, cross-reference, toctree or example, or an example that runs for
# more than a minute, fails the build (exit status 1), after the whole site is built
# (--keep-going) so that one run lists every problem.
set -euo pipefail

DOCS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
cd "$DOCS_DIR"

if [[ "${SKMOE_DOCS_CLEAN:-1}" == "1" ]]; then
    rm -rf _build generated auto_examples _gallery_src sg_execution_times.rst
fi

# One BLAS thread: the examples fit many small models, and on a small shared machine
# OpenBLAS's spinning worker threads make each fit many times slower.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export MPLBACKEND=agg
# no "Fontconfig"/cache chatter and no writes to the user's home in CI
export MPLCONFIGDIR="${MPLCONFIGDIR:-$DOCS_DIR/_build/.matplotlib}"
mkdir -p "$MPLCONFIGDIR"

start=$(date +%s)
status=0
"$PYTHON" -m sphinx -b html -W --keep-going -j "${SPHINX_JOBS:-1}" \
    -w _build/warnings.log . _build/html || status=$?
elapsed=$(( $(date +%s) - start ))

if compgen -G "auto_examples/plot_*.rst" > /dev/null; then
    echo "--- example run times"
    grep -H -oE 'Total running time of the script:\*\* \([0-9]+ minutes [0-9.]+ seconds\)' \
        auto_examples/plot_*.rst | sed -E 's/^auto_examples\/(.*)\.rst:.*\(([^)]*)\)/  \1.py: \2/' || true
fi
if [[ $status -ne 0 ]]; then
    echo "docs build FAILED after ${elapsed}s; warnings (treated as errors):" >&2
    cat _build/warnings.log >&2 || true
    exit "$status"
fi
echo "docs built in ${elapsed}s: $DOCS_DIR/_build/html/index.html"
