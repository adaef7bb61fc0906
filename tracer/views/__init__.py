"""The standalone app's views (mounted with ``include("tracer.urls")``).

Each renders from a trace's exported data (``trace.to_dict()``) only, and is wrapped
with ``tracer.access.tracer_view``.
"""
