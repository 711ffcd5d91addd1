"""Turning engine results into things people read: text tables now, DataFrames and widgets later.

Display code formats what it is given; it never reads the store or calls an engine.
"""
