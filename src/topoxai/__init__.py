"""topoxai: a reproducible heart-disease classifier with topological explanations."""

from importlib import metadata


def version() -> str:
    """The installed package's version ("unknown" in a source tree never installed)."""
    try:
        return metadata.version("topoxai")
    except metadata.PackageNotFoundError:
        return "unknown"
