"""The HTTP service: ``create_app`` builds the FastAPI app (see :mod:`emovox.service.app`)."""

from __future__ import annotations


def create_app(*args, **kwargs):
    """Lazy re-export of :func:`emovox.service.app.create_app` (imports FastAPI on first use)."""
    from emovox.service.app import create_app as _create

    return _create(*args, **kwargs)


__all__ = ["create_app"]
