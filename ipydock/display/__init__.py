"""Turning engine results into things people read: text tables, DataFrames, HTML and widgets.

Display code formats what it is given; it never reads the store or calls an engine.
"""
