"""Command-line interface (installed as ``asma.cli``)."""
