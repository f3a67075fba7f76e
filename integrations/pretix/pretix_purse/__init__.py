"""pretix-purse: pay pretix orders with a purse chip card through the shop plugin."""

__version__ = "0.1.0"
