"""After the run: tables, figures and re-modelled latency of finished runs.

Imported only by the analysis scripts and the benchmarks, never by the solvers:
``tables`` (the paper's latency/accuracy tables), ``actions`` (action shares, Fig. 8),
``figures`` (plots), ``remodel`` (a finished run's latency re-charged under a cost
profile), ``fit`` (fitting a cost profile to recorded calls) and ``cli`` (the analysis
scripts' shared flags and main loop).
"""
