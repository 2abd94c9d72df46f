"""Visual inspection of fitted models: reliability diagrams (matplotlib, optional).

:class:`ReliabilityDisplay` draws binned and smooth reliability diagrams with bin
counts, and one panel per expert of a mixture on its routed view. matplotlib is only
imported when a diagram is drawn; without it, drawing raises an ImportError naming
``pip install "skmoe[plot]"``.
"""

from skmoe.inspection._reliability import ReliabilityDisplay

__all__ = ["ReliabilityDisplay"]
