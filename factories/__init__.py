"""Source-checkout alias of :mod:`datalayer.factories`, where the factories live and ship.

Not installed by the wheel (a top-level ``factories`` package would shadow the user's own);
new code imports ``datalayer.factories``.
"""

from datalayer.factories import *  # noqa: F403
from datalayer.factories import __all__ as __all__
