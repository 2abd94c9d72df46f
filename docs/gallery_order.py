"""Order of the examples in the gallery: the quick start first, then by file name."""


class QuickstartFirst:
    """Sort key of sphinx-gallery's ``within_subsection_order``.

    Parameters
    ----------
    src_dir : str
        The gallery's source folder (sphinx-gallery passes it; unused).
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        return (filename != "plot_quickstart.py", filename)

    def __repr__(self):
        return f"{type(self).__name__}()"
