"""Simultaneous-inference methods as plug-ins: the interface (``base.py``), the registry
(``registry.py``) and one module per method."""
