"""`harness run`'s machinery: the plan of a matrix (plan.py, sweeps.py, plan_file.py), the job
that flows from it (job.py) into its own process (job_process.py) and records, the run folder's
layout (layout.py), and the executors that decide where and when each job runs (executors/)."""
