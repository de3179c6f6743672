"""The one error hierarchy: every failure gnnsec can name and say how to fix is a :class:`GnnsecError`.

The CLI (``gnnsec.cli.main.main``) turns a ``GnnsecError`` into its message and ``exit_code``; anything else
is a bug and is reported as one (``--traceback`` or ``GNNSEC_DEBUG=1`` shows where). Library code raises these
with ``from exc`` so the cause stays attached for ``--traceback``. This module imports nothing of ours, so every
layer can use it. ``gnnsec.schema.SchemaError`` is the one exception outside it: the schema imports nothing of
ours either, and the CLI handles it the same way.
"""

from __future__ import annotations


class GnnsecError(Exception):
    """Base class: an error the user can act on. ``exit_code`` is 1 unless a subclass says otherwise."""

    exit_code: int = 1


class InputError(GnnsecError, ValueError):
    """Input that cannot be used as given: a file, a record, an option value or a combination of options."""


class StateError(GnnsecError):
    """Something gnnsec needs is missing: no trained model, an empty graph, a day with nothing to score."""
