"""`harness run`'s machinery: the plan of a matrix (plan.py, sweeps.py, plan_file.py), the job
that flows from it (job.py) into its own process (job_process.py, or a fork of a warm
job_server.py) and records, the run folder (layout.py, folder.py, resume.py), what a user
watches (display.py, progress.py), and the executors that decide where and when each job runs
(executors/)."""
