"""User errors outside a spec: a bad option value, a run folder held by another run, ...

`harness` prints each as one line (`error: <option or file>: <field>: <value>: <what is
allowed>`) and exits 2. Raise it at the edge, where arguments are validated; the code behind
the edge trusts its inputs.
"""

from __future__ import annotations


class UsageError(ValueError):
    """An argument or option the user gave cannot be used; `str()` is the one line shown."""
