"""Analyses: the chain inputs × plan → studies → pooled cells (``pipeline.analyse``), the few-studies headline,
the sensitivity analysis and the component meta-regression. DataFrames in, DataFrames out; nothing is drawn or
written here.
"""
