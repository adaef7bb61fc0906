"""The proxy database engine: ``ENGINE = "tracer.backend"``.

Django loads ``tracer.backend.base.DatabaseWrapper``; see that module.
"""
