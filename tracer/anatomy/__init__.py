"""What a database backend is made of, read from its engine's classes without opening
a connection: the classes of each role, the feature flags, the lookup operators, the
column types. The backend anatomy page (``tracer.views.backends``) shows them.

>>> from tracer.anatomy import load, sections
>>> backends = [load("default"), load("replica")]
>>> sections.flags(backends)
"""

from __future__ import annotations

from tracer.anatomy import sections
from tracer.anatomy.reading import NEEDS_SERVER, Backend, Cell, Row, load

__all__ = ["NEEDS_SERVER", "Backend", "Cell", "Row", "load", "sections"]
