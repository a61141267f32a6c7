"""funnelctl: run a customer-success funnel from the terminal."""

__version__ = "0.1.0"
