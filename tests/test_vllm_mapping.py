"""vLLM mapping without vLLM.

messages -> prompt ids is tested with the real SmolLM2 tokenizer (from the embedded
GGUF) and a small Llama-3-style tokenizer built here; request outputs -> completions
with stand-ins shaped exactly like ``vllm.outputs.RequestOutput`` / ``CompletionOutput``;
``VLLMChatModel`` itself runs over a fake ``vllm`` module that records what the
backend asks of the engine.
"""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from typing import Any, Sequence

import pytest
from conftest import missing

from live_mind.models import mapping
from live_mind.models.base import ChatRequest, ContextLengthExceeded
from live_mind.models.vllm import mapping as vllm_mapping

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]


# ------------------------------------------------------------------ vLLM-shaped stand-ins

@dataclass
class CompletionOutput:
    """Same fields, order and defaults as vllm.outputs.CompletionOutput."""

    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: Any
    routed_experts: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    lora_request: Any = None
    kv_transfer_params: dict | None = None


class RequestOutput:
    """Same constructor as vllm.outputs.RequestOutput."""

    def __init__(self, request_id, prompt, prompt_token_ids, prompt_logprobs, outputs, finished,
                 metrics=None, lora_request=None, encoder_prompt=None, encoder_prompt_token_ids=None,
                 num_cached_tokens=None, **kwargs):
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.prompt_logprobs = prompt_logprobs
        self.outputs = outputs
        self.finished = finished
        self.metrics = metrics
        self.lora_request = lora_request
        self.encoder_prompt = encoder_prompt
        self.encoder_prompt_token_ids = encoder_prompt_token_ids
        self.num_cached_tokens = num_cached_tokens


# ------------------------------------------------------------------ tokenizers

@pytest.fixture(scope="module")
def smol():
    from live_mind.models.embedded import EmbeddedModelMissing

    try:
        return mapping.load_chat_tokenizer("embedded")
    except EmbeddedModelMissing as exc:
        missing(f"embedded model not installed: {exc}")


LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


@pytest.fixture(scope="module")
def llama3_like():
    """A tiny word-level tokenizer with Llama-3's special tokens, EOS and template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "Be", "brief.", "What", "is", "2+2?", "action", "system", "user", "assistant", "\n\n"]
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    vocab = {w: i for i, w in enumerate(words + specials)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bos = vocab["<|begin_of_text|>"]
    core.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
                                  unk_token="<unk>", additional_special_tokens=specials[2:])
    tok.chat_template = LLAMA3_TEMPLATE
    return tok


# ------------------------------------------------------------------ prompts

def test_smollm2_prompt_text_and_priming(smol):
    text = mapping.chat_prompt_text(smol, MESSAGES, "action ")
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\naction "
    )
    assert mapping.chat_prompt_text(smol, MESSAGES).endswith("<|im_start|>assistant\n")


def test_smollm2_prompt_ids_have_no_added_special_tokens(smol):
    ids = mapping.chat_prompt_ids(smol, MESSAGES, "action")
    text = mapping.chat_prompt_text(smol, MESSAGES, "action")
    assert ids == smol(text, add_special_tokens=False)["input_ids"]
    im_start = smol.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == im_start and ids.count(im_start) == 3
    assert smol.decode(ids) == text
    # SmolLM2 names <|im_start|> as BOS but never adds it: nothing may be stripped.
    assert mapping.strip_leading_bos(text, smol) == text


def test_smollm2_stop_ids(smol):
    ids = mapping.end_of_turn_ids(smol)
    assert smol.convert_tokens_to_ids("<|im_end|>") in ids
    assert ids[0] == smol.eos_token_id


def test_llama3_prompt_has_one_bos_and_eot_stop(llama3_like):
    tok = llama3_like
    ids = mapping.chat_prompt_ids(tok, MESSAGES, "action")
    bos = tok.convert_tokens_to_ids("<|begin_of_text|>")
    assert ids[0] == bos and ids.count(bos) == 1
    assert ids[-1] == tok.convert_tokens_to_ids("action")
    stops = mapping.end_of_turn_ids(tok)
    assert tok.convert_tokens_to_ids("<|eot_id|>") in stops and tok.eos_token_id in stops
    text = mapping.chat_prompt_text(tok, MESSAGES)
    assert mapping.adds_bos(tok)
    assert mapping.strip_leading_bos(text, tok) == text[len("<|begin_of_text|>"):]


def test_extra_stop_tokens(llama3_like):
    ids = mapping.end_of_turn_ids(llama3_like, ["<|start_header_id|>", "not-a-token"])
    assert llama3_like.convert_tokens_to_ids("<|start_header_id|>") in ids


# ------------------------------------------------------------------ sampling and outputs

def test_sampling_kwargs_are_greedy():
    kwargs = vllm_mapping.sampling_kwargs(ChatRequest(MESSAGES, max_new_tokens=77), [2, 0])
    assert kwargs == {"temperature": 0.0, "max_tokens": 77, "stop_token_ids": [2, 0], "skip_special_tokens": True}


def test_completion_from_request_output():
    out = RequestOutput("7", None, list(range(40)), None,
                        [CompletionOutput(0, " inference. x", (5, 6, 7), None, None, finish_reason="stop", stop_reason=2)],
                        True, num_cached_tokens=32)
    c = vllm_mapping.completion_from_request_output(out, 1.5)
    assert (c.text, c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.seconds) == (" inference. x", 40, 3, 32, 1.5)
    assert c.finish_reason == "stop" and c.extra == {"stop_reason": 2, "request_id": "7"}


def test_length_finish_and_missing_cache_count():
    out = RequestOutput("1", None, [1, 2], None, [CompletionOutput(0, "ab", [3, 4], None, None, finish_reason="length")],
                        True)
    c = vllm_mapping.completion_from_request_output(out, 0.1)
    assert c.finish_reason == "length" and c.cached_tokens == 0


def test_grammars():
    assert mapping.choices_grammar(["A", 'say "hi"']) == 'root ::= "A" | "say \\"hi\\""'
    assert mapping.healing_grammar(" ") == 'root ::= " " .*'
    assert mapping.split_for_healing("action ") == ("action", " ")
    assert mapping.split_for_healing("action ", ["A"]) == ("action ", "")
    assert mapping.common_prefix_length([1, 2, 3], [1, 2, 4]) == 2
    with pytest.raises(ValueError):
        mapping.choices_grammar([])


# ------------------------------------------------------------------ the backend over a fake engine

class FakeLLM:
    """Records engine arguments and generate calls; simulates prefix caching."""

    instances: list["FakeLLM"] = []

    def __init__(self, hf_tokenizer, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple[list, list]] = []
        self.seen: list[list[int]] = []
        self._tokenizer = hf_tokenizer
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return self._tokenizer

    def generate(self, prompts, sampling_params, use_tqdm=True):
        self.calls.append((prompts, sampling_params))
        outputs = []
        for i, (prompt, params) in enumerate(zip(prompts, sampling_params)):
            ids = prompt["prompt_token_ids"]
            cached = max((mapping.common_prefix_length(ids, old) for old in self.seen), default=0)
            self.seen.append(ids)
            constraint = params.kwargs.get("structured_outputs")
            text = constraint.choice[0] if constraint is not None and constraint.choice else "reply"
            outputs.append(RequestOutput(str(i), None, ids, None,
                                         [CompletionOutput(0, text, [9] * 4, None, None, finish_reason="stop")],
                                         True, num_cached_tokens=cached // 16 * 16))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch, smol):
    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class StructuredOutputsParams:
        def __init__(self, choice=None, regex=None):
            self.choice, self.regex = choice, regex

    vllm = types.ModuleType("vllm")
    vllm.LLM = lambda **kwargs: FakeLLM(smol, **kwargs)
    vllm.SamplingParams = SamplingParams
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = StructuredOutputsParams
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    FakeLLM.instances.clear()
    return FakeLLM


def test_backend_engine_arguments_and_one_generate_per_batch(fake_vllm, smol):
    from live_mind.models.vllm.model import VLLMChatModel

    model = VLLMChatModel("/models/llama-3-70b-awq", tensor_parallel_size=4, pipeline_parallel_size=2,
                          gpu_memory_utilization=0.6, quantization="awq", max_model_len=8192, name="llama-3-70b",
                          engine_args={"max_num_seqs": 64})
    engine = fake_vllm.instances[0]
    assert engine.kwargs["enable_prefix_caching"] is True
    assert (engine.kwargs["tensor_parallel_size"], engine.kwargs["pipeline_parallel_size"]) == (4, 2)
    assert engine.kwargs["quantization"] == "awq" and engine.kwargs["gpu_memory_utilization"] == 0.6
    assert engine.kwargs["max_model_len"] == 8192 and engine.kwargs["max_num_seqs"] == 64

    long = MESSAGES[:1] + [{"role": "user", "content": "What is 2+2? " * 20}]
    requests = [ChatRequest(long, max_new_tokens=50, assistant_prefix="action "),
                ChatRequest(long + [{"role": "assistant", "content": "4"}, {"role": "user", "content": "Sure?"}]),
                ChatRequest(MESSAGES, choices=["A", "B"])]
    completions = model.complete(requests)
    assert len(engine.calls) == 1
    prompts, params = engine.calls[0]
    # prefix healing: the trailing space is held back and the output must begin with it
    assert prompts[0]["prompt_token_ids"] == mapping.chat_prompt_ids(smol, long, "action")
    assert params[0].kwargs["structured_outputs"].regex == r"(?: )[\s\S]*"
    assert "structured_outputs" not in params[1].kwargs
    assert params[0].kwargs["temperature"] == 0.0 and params[0].kwargs["max_tokens"] == 50
    assert smol.convert_tokens_to_ids("<|im_end|>") in params[0].kwargs["stop_token_ids"]
    assert params[2].kwargs["structured_outputs"].choice == ["A", "B"]
    assert [c.text for c in completions] == ["reply", "reply", "A"]
    assert completions[1].cached_tokens > 0 and completions[0].cached_tokens == 0
    assert len({c.seconds for c in completions}) == 1
    assert model.complete([]) == []


def test_backend_constrains_the_action_name_with_one_regex(fake_vllm, smol):
    from live_mind.models.vllm.model import VLLMChatModel, opening_regex

    model = VLLMChatModel("m")
    leads = [" background.", " inference.", " hypothesize.", " wait."]
    model.complete([ChatRequest(MESSAGES, assistant_prefix="action", lead_choices=leads)])
    prompts, params = fake_vllm.instances[0].calls[0]
    assert prompts[0]["prompt_token_ids"] == mapping.chat_prompt_ids(smol, MESSAGES, "action")
    regex = params[0].kwargs["structured_outputs"].regex
    assert regex == opening_regex("", leads)
    assert re.fullmatch(regex, " wait.") and re.fullmatch(regex, " inference. the sky is blue\nmore")
    assert not re.fullmatch(regex, " waiting") and not re.fullmatch(regex, "inference.")
    assert opening_regex("", None) is None and re.fullmatch(opening_regex("\n", None), "\nx")
    assert re.fullmatch(opening_regex("", ["(a)?"]), "(a)? rest") and not re.fullmatch(opening_regex("", ["(a)?"]), "a rest")


def test_backend_rejects_prompts_over_max_model_len(fake_vllm):
    from live_mind.models.vllm.model import VLLMChatModel

    model = VLLMChatModel("m", max_model_len=16)
    with pytest.raises(ContextLengthExceeded):
        model.complete([ChatRequest(MESSAGES)])


class FakeAsyncLLM:
    """``AsyncLLM``'s surface as the async engine mode uses it: one ``generate`` stream per
    request, yielding cumulative outputs; records how many requests were in flight."""

    def __init__(self, tokenizer):
        self._tokenizer, self.in_flight, self.most, self.prompts, self.closed = tokenizer, 0, 0, [], False

    def get_tokenizer(self):
        return self._tokenizer

    async def generate(self, prompt, params, request_id):
        import asyncio

        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        self.prompts.append(prompt["prompt_token_ids"])
        try:
            for k, text in enumerate(["re", "reply"]):
                await asyncio.sleep(0.01)
                yield RequestOutput(request_id, None, prompt["prompt_token_ids"], None,
                                    [CompletionOutput(0, text, [9] * (k + 1), None, None, finish_reason="stop" if k else None)],
                                    bool(k), num_cached_tokens=0)
        finally:
            self.in_flight -= 1

    async def abort(self, request_id):
        pass

    async def reset_prefix_cache(self):
        return True

    def shutdown(self):
        self.closed = True


def test_async_engine_mode_is_native_and_keeps_every_request_in_flight(fake_vllm, smol, monkeypatch):
    import asyncio

    from live_mind.models.aio import acomplete, native_async
    from live_mind.models.vllm.model import VLLMChatModel

    engines = []
    async_llm = types.ModuleType("vllm.v1.engine.async_llm")
    async_llm.AsyncLLM = types.SimpleNamespace(from_engine_args=lambda args: engines.append(FakeAsyncLLM(smol)) or engines[-1])
    arg_utils = types.ModuleType("vllm.engine.arg_utils")
    arg_utils.AsyncEngineArgs = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "vllm.v1.engine.async_llm", async_llm)
    monkeypatch.setitem(sys.modules, "vllm.engine.arg_utils", arg_utils)
    model = VLLMChatModel("m", async_engine=True, max_model_len=4096)
    try:
        assert native_async(model) and not fake_vllm.instances  # no offline LLM was built
        pieces: list[str] = []
        requests = [ChatRequest(MESSAGES + [{"role": "user", "content": f"q{i}"}], on_token=pieces.append if i == 0 else None)
                    for i in range(6)]

        async def main():
            return await asyncio.gather(*(acomplete(model, r) for r in requests))

        done = asyncio.run(main())
        assert [c.text for c in done] == ["reply"] * 6 and engines[0].most == 6
        assert "".join(pieces) == "reply" and done[0].completion_tokens == 2
        assert engines[0].prompts[0] == model.prompt_ids(requests[0])
        assert [c.text for c in model.complete(requests[:2])] == ["reply", "reply"]
        model.clear_prefix_cache()
    finally:
        model.engine.shutdown()
    assert engines[0].closed


def test_cpu_threads_bind_every_core_or_the_given_list():
    assert vllm_mapping.cpu_threads_bind("all", cores=[3, 0, 1]) == "0,1,3"
    assert vllm_mapping.cpu_threads_bind("0-3") == "0-3" and vllm_mapping.cpu_threads_bind("0,2") == "0,2"
    for bad in ("", "every", "0-", "0;1"):
        with pytest.raises(ValueError, match="cpu_threads"):
            vllm_mapping.cpu_threads_bind(bad)


def test_cpu_threads_sets_the_bind_variable_only_when_unset(fake_vllm, monkeypatch):
    import os

    from live_mind.models.vllm.model import VLLMChatModel

    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    VLLMChatModel("m")
    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ  # no option: vLLM's own binding
    VLLMChatModel("m", cpu_threads="all")
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == ",".join(str(i) for i in sorted(os.sched_getaffinity(0)))
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0")
    VLLMChatModel("m", cpu_threads="all")
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0"  # the user's setting wins
