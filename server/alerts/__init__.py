"""Threshold alerts: the rules engine (a listener of the evaluator's tick), thresholds, list and resolve."""
