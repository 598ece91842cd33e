"""Training jobs a page can poll: a job in a thread or a process, its state, the plan and the queue."""
