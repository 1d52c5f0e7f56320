"""tillit: rank home-care invoices for human review before a municipality pays them."""

__version__ = "0.1.0"
CONTRACT_VERSION = "1.3"
