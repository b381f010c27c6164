"""Benchmarks: `python -m benchmarks.<name>`, each printing JSON with a baseline
measured in the same run (DESIGN.md section 8). No timing assertions anywhere."""
