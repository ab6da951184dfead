"""Training engine: jobs (jobs.py) and what executors run (work.py: fold jobs and tuning
trials), the job runner that both go through (runner.py: data, resume, run status), a fold job
(worker.py) and a trial (tuning.py), the training loop (train.py) and its handlers
(handlers.py), budgets (budget.py), the grid with resume and aggregates (grid.py), executors
(executors/: local, packed, Ray, one scheduling loop) and interrupts (interrupts.py)."""
