"""Tasks: one place that knows a dataset (how rows are read, selected, shown and scored).

``resolve.resolve_task(name_or_file, data_path)`` is the one entry point the command
line uses: a built-in name (``mmlu-pro``, the default, or ``mmlu``) or a TOML task file,
validated before any model loads.  See docs/tasks.md.  This package's ``__init__``
imports nothing, so ``prompts.py`` and ``records.py`` can use its leaf modules.
"""
