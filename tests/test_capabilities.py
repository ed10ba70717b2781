"""Capabilities are asked of the backend (``models/capabilities.py``), never read off its
name: each backend's declared set, what the declarations promise, and a source check that
no code outside ``live_mind/models/`` compares backend names."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from live_mind.models import registry
from live_mind.models.base import Capabilities, ChatRequest
from live_mind.models.capabilities import backend_class, capabilities
from live_mind.models.scripted import ScriptedModel

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "transformers": Capabilities(prefix_cache=True, prefill_only=True, choices=True, lead_choices=True, streaming=True,
                                 stop=True, batch_decode=True, threads_option="threads"),
    "llamacpp": Capabilities(prefill_only=True, choices=True, streaming=True, stop=True, threads_option="n_threads",
                             extends_context=True, draft_verify=True),
    "openai": Capabilities(choices=True, streaming=True, stop=True),
    "vllm": Capabilities(choices=True, lead_choices=True, async_engine=True),
    "scripted": Capabilities(prefill_only=True, choices=True, lead_choices=True, streaming=True, stop=True,
                             draft_verify=True, extends_context=True),
}


def test_every_backend_of_the_table_has_an_expected_set():
    assert set(EXPECTED) == set(registry.BACKENDS)


@pytest.mark.parametrize("backend", sorted(EXPECTED))
def test_declared_capabilities(backend):
    assert capabilities(backend) == EXPECTED[backend]
    assert backend_class(backend).capabilities == EXPECTED[backend]


def test_an_entry_can_refine_its_backend_set():
    """A vLLM entry with streaming-input sessions streams and stops; a plain one does not."""
    sessions = registry.parse_entry("s", {"backend": "vllm", "model": "m", "streaming_sessions": True}, "test")
    plain = registry.parse_entry("p", {"backend": "vllm", "model": "m"}, "test")
    assert capabilities(sessions).streaming and capabilities(sessions).stop and not capabilities(sessions).async_engine
    assert not capabilities(plain).streaming and capabilities(plain) == EXPECTED["vllm"]
    assert capabilities(registry.resolve("smollm2-135m")) == EXPECTED["transformers"]


def test_a_loaded_model_answers_for_itself_and_an_undeclared_one_has_none():
    assert capabilities(ScriptedModel()) == EXPECTED["scripted"]
    assert capabilities(object()) == Capabilities()
    assert not any(getattr(Capabilities(), f.name) for f in fields(Capabilities))


def test_the_scripted_model_does_what_it_declares():
    model = ScriptedModel(default="one two three")
    pieces: list[str] = []
    [prefill, streamed] = model.complete([
        ChatRequest([{"role": "user", "content": "q"}], max_new_tokens=4, prefill_only=True),
        ChatRequest([{"role": "user", "content": "q"}], max_new_tokens=4, on_token=pieces.append),
    ])
    assert prefill.text == "" and prefill.completion_tokens == 0
    assert "".join(pieces) == streamed.text and len(pieces) > 1


@pytest.mark.parametrize("backend", [b for b, caps in sorted(EXPECTED.items()) if not caps.lead_choices])
def test_a_backend_without_lead_choices_refuses_them(backend):
    """Where ``lead_choices`` is not declared, ``complete`` refuses such a request before
    it touches the engine (an instance without one suffices)."""
    from live_mind.models.base import UnsupportedFeature

    cls = backend_class(backend)
    request = ChatRequest([{"role": "user", "content": "q"}], lead_choices=["wait"])
    with pytest.raises(UnsupportedFeature, match="lead_choices"):
        cls.complete(object.__new__(cls), [request])


# --------------------------------------------------------------------------- no backend names outside models/


def _code_files() -> list[Path]:
    files = [*ROOT.glob("*.py"), *(ROOT / "live_mind").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py"),
             *(ROOT / "scripts").rglob("*.py")]
    return [p for p in files if (ROOT / "live_mind" / "models") not in p.parents]


def _is_name(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in registry.BACKENDS
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_name(e) for e in node.elts)
    return False


def _backend_name_uses(tree: ast.AST) -> list[int]:
    """Lines that compare with a backend name or ``.backend``, key a table by backend
    names, or list only backend names (``PREFILL_BACKENDS = ("transformers", ...)``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_name(s) or (isinstance(s, ast.Attribute) and s.attr == "backend") for s in sides):
                found.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(k is not None and _is_name(k) for k in node.keys):
            found.append(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and all(_is_name(e) for e in node.elts):
            found.append(node.lineno)
    return found


def test_no_backend_name_is_compared_outside_the_models_package():
    hits = {str(p.relative_to(ROOT)): lines for p in _code_files()
            if (lines := _backend_name_uses(ast.parse(p.read_text(encoding="utf-8"))))}
    assert not hits, f"ask capabilities(...) instead of the backend's name: {hits}"


def test_the_name_check_finds_what_it_forbids():
    for source in ('if spec.backend == "transformers": pass', 'ok = backend in ("vllm", "scripted")',
                   'THREADS = {"llamacpp": "n_threads"}', 'PREFILL = ("transformers", "llamacpp")',
                   'same = spec.backend != other'):
        assert _backend_name_uses(ast.parse(source)), source
    assert not _backend_name_uses(ast.parse('PACKAGES = ("torch", "transformers", "nltk")'))
