"""``tr-qa bench``: one run that measures asks, start-up, index build, memory, HTTP load and peer libraries.

Library code only; the click command is ``tr_qa.bench.commands.bench_cmd``. Everything runs on loopback and in
temporary folders; nothing is written into the repository but the ``--json-out`` file.
"""
