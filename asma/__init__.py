"""asma: asymmetric spatio-temporal masking for self-supervised skeleton action recognition."""

__version__ = "0.1.0"
