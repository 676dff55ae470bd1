"""The web server, split by job: ``security`` (what every request passes), ``limits`` (rate limit, load
shedding), ``api`` (JSON API), ``chat`` (Gradio chat), ``render`` (HTML), ``app`` (assembly, ``serve``), ``server``
(running it in a thread or a process, for tests and benchmarks)."""
