"""The package version (kept in its own module so any steerlab module can import it)."""

__version__ = "0.1.0"
