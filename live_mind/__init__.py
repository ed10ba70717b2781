"""live_mind: simultaneous inference of LLMs (LiveMind, Chen et al., arXiv 2406.14319).

Modules, one concept each:

* the protocol: ``segment`` (Punkt sentences and finer pieces), ``actions`` (CAS/SAS and
  the parse rule), ``prompts``/``formats`` (what the models see), ``controller`` (the
  per-question state machine, Algorithm 1, and the CoT baseline), ``answer`` (scoring);
* time: ``clock`` (the simulated typing timeline, §4.1), ``profiles`` (token-cost
  profiles for modelled timing), ``prefill`` (prefill while the options are typed);
* running: ``solver`` (real-time, one question at a time), ``concurrency`` (several
  questions in flight), ``batch`` (the batched protocol, §4.3), ``live``/``live_cli``
  (the live terminal session), ``cli`` (flags and validation before any model loads),
  ``interrupt`` (stopping on Ctrl-C);
* files: ``data`` (MMLU-Pro and the sample set), ``records`` (the output schema),
  ``runfiles`` (journal, atomic writes, resume), ``tomlfile`` (reading TOML with
  one-line errors);
* ``models`` (the chat-model protocol, the backend table, capabilities, the backends;
  transformers in ``models.hf``) and ``analysis`` (after the run: tables, action shares,
  figures, re-modelled latency, profile fitting; imported only by the scripts).
"""

__version__ = "0.1.0"

import os as _os

# OpenMP workers that spin while waiting (the default) starve each other on a machine
# with few cores and other work running: a 48-token reply took 200 s instead of 2 s on a
# busy 2-core machine.  Passive waiting costs nothing measurable when the machine is
# free.  Set before torch or llama.cpp load OpenMP; an explicit setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
