"""LiveMind as a service: a WebSocket session server and a web page (``serve.py``).

* ``protocol`` -- the messages a client sends and the events the server sends back;
* ``limits`` -- per-session limits (text, message size and rate, idle time) and the
  server-wide overhead statistics;
* ``auth`` -- loopback detection and the bearer-token check;
* ``session`` -- one user's question on the shared models: the live session core
  (``live.py``) fed by the client's messages;
* ``app`` -- the FastAPI application (WebSocket, plain HTTP, the page);
* ``main`` -- the command line (the solvers' flags plus the server's).

The protocol is documented in docs/serve.md.
"""
