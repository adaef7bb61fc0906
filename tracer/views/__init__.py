"""The standalone web app's views (mounted with ``include("tracer.urls")``)."""
