"""Per-model defaults of the paper's protocol: token limit and parse rule (paper §4.1).

The paper's entries run with 8,192 new tokens and the v1 parse rule, the embedded model
with a small limit and the lenient rule; flags override; the run configuration saves
what was used."""

from __future__ import annotations

import argparse

import pytest

from live_mind import cli
from live_mind.models import registry
from live_mind.prompts import PromptSet


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_common_args(parser)
    return parser.parse_args(list(argv))


def _entry(**keys) -> registry.ModelSpec:
    raw = {"backend": "scripted", **keys}
    return registry.parse_entry("m", raw, "[models.m]")


def test_packaged_entries_name_their_defaults():
    specs = registry.load_specs()
    for name in ("llama-3-70b", "llama-3-8b"):
        assert (specs[name].max_new_tokens, specs[name].parse) == (8192, "v1")
    for name in ("smollm2-135m", "smollm2-135m-llamacpp", "smollm2-135m-server"):
        assert (specs[name].max_new_tokens, specs[name].parse) == (512, "lenient")


def test_resolution_and_saved_configuration():
    paper = {"model": _entry(max_new_tokens=8192, parse="v1")}
    config = cli.run_config(_args(), "time_info", paper, PromptSet())
    assert (config["max_new_tokens"], config["inference_max_new_tokens"], config["parse"]) == (8192, 8192, "v1")
    config = cli.run_config(_args("--max_new_tokens", "64", "--parse", "lenient"), "time_info", paper, PromptSet())
    assert (config["max_new_tokens"], config["inference_max_new_tokens"], config["parse"]) == (64, 64, "lenient")
    bare = {"model": _entry()}
    config = cli.run_config(_args(), "batched", bare, PromptSet())
    assert (config["max_new_tokens"], config["parse"]) == (cli.DEFAULT_MAX_NEW_TOKENS, "v1")
    small = {"model": _entry(max_new_tokens=512, parse="lenient", inference_max_new_tokens=96)}
    config = cli.run_config(_args(), "time_info", small, PromptSet())
    assert (config["max_new_tokens"], config["inference_max_new_tokens"], config["parse"]) == (512, 96, "lenient")
    # the answering model's entry sets the final limit under collaborative inference
    collab = {"model": _entry(max_new_tokens=8192), "assist_model": _entry(max_new_tokens=1024)}
    config = cli.run_config(_args(), "time_info", collab, PromptSet())
    assert (config["max_new_tokens"], config["inference_max_new_tokens"]) == (1024, 8192)


@pytest.mark.parametrize("keys,fragment", [
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    ({"max_new_tokens": "8k"}, "max_new_tokens must be a positive integer"),
    ({"parse": "loose"}, "parse must be one of v1, lenient"),
])
def test_bad_entry_values(keys, fragment):
    with pytest.raises(registry.ConfigError, match=fragment):
        _entry(**keys)
