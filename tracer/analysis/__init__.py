"""What a trace says about the code that made it: fingerprints and statement groups
(similar, duplicate). Everything here runs on recorded traces, never while recording.
"""
