"""live_mind: simultaneous inference of LLMs (LiveMind, Chen et al., arXiv 2406.14319).

Modules, one concept each: ``segment`` (Punkt sentences and finer pieces), ``actions``
(CAS/SAS and the parser), ``prompts``/``formats`` (what the models see), ``clock``
(the simulated typing timeline), ``controller`` (the per-question state machine),
``solver``/``batch`` (real-time and batched protocols), ``records``/``runfiles``
(outputs), ``data`` (MMLU-Pro), ``answer`` (scoring), ``analysis`` (tables and
figures), and ``models`` (the chat-model protocol and its backends).
"""

__version__ = "0.1.0"

import os as _os

# OpenMP workers that spin while waiting (the default) starve each other on a machine
# with few cores and other work running: a 48-token reply took 200 s instead of 2 s on a
# busy 2-core machine.  Passive waiting costs nothing measurable when the machine is
# free.  Set before torch or llama.cpp load OpenMP; an explicit setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
