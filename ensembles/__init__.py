"""Partition ensembles: N data shards, N models, one vote (the ``ensemble`` entry point)."""
