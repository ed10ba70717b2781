"""LiveMind as a service: a session server that front ends stream the user's typing into.

    python serve.py [--model NAME] [--assist_model NAME] [--host 127.0.0.1] [--port 8000]

Open http://127.0.0.1:8000/ for the page: type a question (or replay a sample one at the
paper's 0.25 s per character), watch the model's actions appear while you type, press
Enter and the answer streams, with its latency beside the chain-of-thought baseline's.
Applications use the WebSocket ``/v1/session`` (send the text as it is typed, then
``submit``) or ``POST /v1/answer``; the protocol, limits, API key and scale-out are in
docs/serve.md.  The solvers' model flags apply (``--model``, ``--action_set``,
``--prompt_format``, ``--max_new_tokens``...).  Binding another host than 127.0.0.1
needs an API key in ``$LIVEMIND_API_KEY``.  The code is in ``live_mind/serve/``.
"""

from __future__ import annotations

import sys

from live_mind.serve.main import main

if __name__ == "__main__":
    sys.exit(main())
