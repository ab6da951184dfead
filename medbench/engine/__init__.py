"""Training engine: one job (train.py), the grid with resume and executors (run.py)."""
