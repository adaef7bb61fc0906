"""What a trace says about the code that made it: fingerprints, statement groups
(similar, duplicate), slow statements, and query plans (EXPLAIN, on demand, of a
statement already recorded). Nothing here runs while recording.
"""
