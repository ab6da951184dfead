"""Training engine: jobs (jobs.py) run by a worker (worker.py: one job end to end, train.py: its
epochs), the grid with resume and aggregates (grid.py), executors (local_executor.py, packing.py,
ray_executor.py) and what they run (work.py: jobs and tuning trials, tuning.py, budget.py)."""
