"""Bring your own table: a YAML spec describes one row per payment or claim; tillit checks,
derives point-in-time entity history, trains both scorers and writes the same risk list.

Modules follow the data flow: `spec` (the spec and the check at the door), `features`
(entity history in DuckDB), `model` (the blended risk), `train` (time split or
cross-validation), `score` (the bounded, explained risk list), `report`, `simulate`
(example tables).
"""
