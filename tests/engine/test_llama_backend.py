"""The llama.cpp engine against the real starter model, with greedy (deterministic) sampling.

Greedy text repeats exactly only when the same evaluation schedule produced it (llama.cpp's
results depend on batch shapes and CPU features); tests that reach a prompt by two schedules
compare the next-token distribution instead (see tests/logits.py).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import llama_cpp
import pytest
from logits import assert_same_distribution, counting_evals, first_token

from termllm.domain import (
    Completion,
    FinishReason,
    GenParams,
    Message,
    PromptProgress,
    Role,
    TextChunk,
)
from termllm.engine import decoding, hardware, llama_backend, planning
from termllm.engine.base import LoadRequest
from termllm.engine.hardware import DeviceType
from termllm.engine.llama_backend import LlamaEngine, LlamaModel
from termllm.engine.system import read_system_info
from termllm.errors import GGUFError, ModelLoadError

ROOT = Path(__file__).resolve().parents[2]
MAX_TOKENS = 24
GREEDY = GenParams(temperature=0.0, seed=1, max_tokens=MAX_TOKENS)
# The starter model ends its answer to QUESTION after 11 to 65 tokens, whatever the evaluation
# schedule (measured on AVX2 with batches of 1, 8 and 512): four times that leaves room for
# CPUs that word it otherwise, so a test that needs `stop` does not depend on rounding.
ROOMY_TOKENS = 256
ROOMY = GenParams(temperature=0.0, seed=1, max_tokens=ROOMY_TOKENS)
QUESTION = [Message(Role.SYSTEM, "You answer briefly."), Message(Role.USER, "What is 2+2?")]
STORY = [Message(Role.USER, "Write a long story about a dragon who learns to cook.")]

# Loads and generates in a fresh process whose fds 1 and 2 are pipes: anything llama.cpp or
# llama-cpp-python wrote to the terminal would show up in them.
LOAD_AND_GENERATE = """
import sys, threading
from pathlib import Path
from termllm.domain import Completion, GenParams, Message, Role
from termllm.engine.base import LoadRequest
from termllm.engine.hardware import DeviceType
from termllm.engine.llama_backend import LlamaEngine
request = LoadRequest(Path(sys.argv[1]), n_ctx=512, threads=2, log_file=Path(sys.argv[2]))
model = LlamaEngine().load(request)
chunks = list(model.stream_chat(
    [Message(Role.USER, "Hi")], GenParams(temperature=0, max_tokens=8), threading.Event()
))
assert isinstance(chunks[-1], Completion) and chunks[-1].content, chunks[-1]
model.close()
"""


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs") / "native.log"


@pytest.fixture(scope="module")
def model(starter_model: Path, log_file: Path) -> Iterator[LlamaModel]:
    loaded = LlamaEngine().load(LoadRequest(starter_model, threads=2, log_file=log_file))
    yield loaded
    loaded.close()


def run(
    model: LlamaModel,
    messages: Sequence[Message],
    params: GenParams = GREEDY,
    cancel: threading.Event | None = None,
) -> tuple[list[str], Completion]:
    chunks = list(model.stream_chat(messages, params, cancel or threading.Event()))
    *pieces, end = chunks
    assert all(isinstance(chunk, TextChunk | PromptProgress) for chunk in pieces)
    assert isinstance(end, Completion)
    return [chunk.text for chunk in pieces if isinstance(chunk, TextChunk)], end


class CancelAfter(threading.Event):
    """A cancel flag that turns itself on at its `after`-th check."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.checks = 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.after or super().is_set()


def patched_copy(source: Path, target: Path, old: bytes, new: bytes) -> Path:
    """A copy of `source` with the first `old` in its header replaced by `new` (same length)."""
    shutil.copyfile(source, target)
    with target.open("r+b") as handle:
        header = handle.read(4 * 1024 * 1024)
        handle.seek(header.index(old))
        handle.write(new)
    return target


def test_load_reports_what_it_chose(model: LlamaModel, log_file: Path) -> None:
    report = model.report
    assert report.n_ctx == 4096  # the default limit, under the model's trained 8192
    assert report.threads == 2
    assert report.placement.total_layers == 30
    assert report.chat_template == "gguf"
    assert report.load_ms > 0
    assert report.warnings == ()
    assert b"llama_model_loader: loaded meta data" in log_file.read_bytes()


def test_a_build_with_offload_but_no_gpu_runs_on_the_cpu(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpus = tuple(d for d in hardware.list_devices() if d.type is DeviceType.CPU)
    assert cpus
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    monkeypatch.setattr(planning, "list_devices", lambda: cpus)
    loaded = LlamaEngine().load(LoadRequest(starter_model, n_ctx=512))
    loaded.close()
    assert loaded.report.placement.gpu_layers == 0
    assert loaded.report.placement.reason == "no GPU device found"
    assert loaded.report.threads == read_system_info().physical_cores


def test_devices_that_cannot_be_listed_are_a_warning(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise OSError("no ggml library")

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    monkeypatch.setattr(planning, "list_devices", broken)
    loaded = LlamaEngine().load(LoadRequest(starter_model, n_ctx=512, threads=2))
    loaded.close()
    assert loaded.report.placement.gpu_layers == 0
    assert loaded.report.warnings == (
        "cannot list GPU devices (no ggml library); running on the CPU",
    )


def test_the_context_shrinks_when_ram_is_short(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = dataclasses.replace(read_system_info(), ram_available_bytes=1)
    monkeypatch.setattr(planning, "read_system_info", lambda: short)
    loaded = LlamaEngine().load(LoadRequest(starter_model, threads=2))
    loaded.close()
    assert loaded.report.n_ctx == 512
    (warning,) = loaded.report.warnings
    assert warning.startswith("context reduced from 4096 to 512 tokens")


def test_a_stream_is_text_chunks_then_one_completion(model: LlamaModel) -> None:
    texts, end = run(model, QUESTION, ROOMY)
    assert texts and end.content == "".join(texts)
    assert end.finish_reason is FinishReason.STOP
    assert end.error is None
    assert end.usage.prompt_tokens == model.count_prompt_tokens(QUESTION)
    assert 0 < end.usage.completion_tokens < ROOMY_TOKENS
    timings = end.timings
    assert timings.ttft_ms > 0
    assert timings.prompt_tokens_per_s > 0
    assert timings.decode_tokens_per_s > 0
    assert timings.load_ms == 0


def test_greedy_answers_repeat_exactly(model: LlamaModel) -> None:
    # From an empty cache both runs evaluate the same batches: the same arithmetic, bit for bit.
    model.clear_state()
    first = run(model, STORY)[1]
    model.clear_state()
    second = run(model, STORY)[1]
    assert first.content and first.content == second.content
    assert first.usage == second.usage


def test_a_cached_prompt_is_answered_from_its_last_token_alone(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model.clear_state()
    whole = first_token(model, STORY)[1]
    run(model, STORY)  # the cache now holds the prompt and an answer, as after a turn
    evaluated = counting_evals(model, monkeypatch)
    end, cached = first_token(model, STORY)
    # generate() evaluates the last prompt token again, for logits to sample from.
    assert evaluated == [1]
    assert end.timings.cached_tokens == end.usage.prompt_tokens - 1
    assert_same_distribution(whole, cached)


def test_a_follow_up_turn_evaluates_only_what_is_new(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(model, QUESTION)[1]
    follow_up = [
        *QUESTION,
        Message(Role.ASSISTANT, first.content),
        Message(Role.USER, "And 3+3?"),
    ]
    evaluated = counting_evals(model, monkeypatch)
    end = run(model, follow_up)[1]
    assert end.finish_reason in {FinishReason.STOP, FinishReason.LENGTH}
    # The first eval is the prompt's: the earlier turn's tokens came from the KV cache.
    new_tokens = model.count_prompt_tokens(follow_up) - model.count_prompt_tokens(QUESTION)
    assert 0 < evaluated[0] <= new_tokens
    assert evaluated[0] == end.usage.prompt_tokens - end.timings.cached_tokens


@pytest.mark.parametrize(
    "params",
    [
        GenParams(temperature=0.0, repeat_penalty=1.5, max_tokens=48),
        GenParams(temperature=0.9, seed=3, repeat_penalty=1.5, max_tokens=48),
        GenParams(temperature=0.9, seed=3, top_k=0, repeat_penalty=1.5, max_tokens=48),
        GenParams(temperature=0.9, seed=3, repeat_penalty=0.8, max_tokens=48),
    ],
    ids=["greedy", "sampled", "no-top-k", "penalty-below-1"],
)
def test_sampling_chooses_what_llama_cpp_python_chooses(
    model: LlamaModel, params: GenParams
) -> None:
    # Both evaluate the prompt in one batch, then one token at a time: the same logits, so the
    # same tokens, unless the sampler chain (its penalty narrowed to the best tokens) differs.
    prompt = model._prompt_tokens(STORY, params.think)
    llama = model._llama
    model.clear_state()
    llama.set_seed(params.seed if params.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED)
    expected: list[int] = []
    sampling = {"top_k": params.top_k, "top_p": params.top_p, "min_p": params.min_p}
    for token in llama.generate(
        prompt, temp=params.temperature, repeat_penalty=params.repeat_penalty, **sampling
    ):
        if llama_cpp.llama_vocab_is_eog(model._vocab, token) or len(expected) == 48:
            break
        expected.append(token)
    model.clear_state()
    end = run(model, STORY, params)[1]
    assert end.content == b"".join(model._piece(token) for token in expected).decode()
    model.clear_state()


def test_the_context_holds_the_prompt_and_every_token_sampled_but_the_last(
    model: LlamaModel,
) -> None:
    model.clear_state()
    end = run(model, STORY, GenParams(temperature=0.0, max_tokens=6))[1]
    assert end.finish_reason is FinishReason.LENGTH
    prompt = model._prompt_tokens(STORY, GREEDY.think)
    held = model.save_state()
    assert held is not None and len(held.tokens) == len(prompt) + 5
    assert list(held.tokens[: len(prompt)]) == prompt
    answer = b"".join(model._piece(token) for token in held.tokens[len(prompt) :]).decode()
    assert end.content.startswith(answer) and len(answer) < len(end.content)


def test_max_tokens_ends_with_length(model: LlamaModel) -> None:
    texts, end = run(model, STORY, GenParams(temperature=0.0, max_tokens=5))
    assert end.finish_reason is FinishReason.LENGTH
    assert end.usage.completion_tokens == 5
    assert end.content == "".join(texts)


def test_cancel_keeps_the_text_so_far(model: LlamaModel) -> None:
    # Both runs start from an empty cache, so the full answer comes from the same schedule.
    model.clear_state()
    cancel = threading.Event()
    texts: list[str] = []
    end = None
    for chunk in model.stream_chat(STORY, GREEDY, cancel):
        if isinstance(chunk, TextChunk):
            texts.append(chunk.text)
            if len(texts) == 3:
                cancel.set()
        else:
            end = chunk
    assert end is not None
    assert end.finish_reason is FinishReason.CANCELLED
    assert len(texts) == 3
    assert end.content == "".join(texts)
    assert end.usage.completion_tokens == 3
    model.clear_state()
    full = run(model, STORY)[1].content
    assert full.startswith(end.content)


def test_cancel_before_the_first_token(model: LlamaModel) -> None:
    cancel = threading.Event()
    cancel.set()
    texts, end = run(model, QUESTION, cancel=cancel)
    assert texts == []
    assert end.finish_reason is FinishReason.CANCELLED
    assert end.content == ""
    assert end.usage.completion_tokens == 0


def long_prompt(words: int) -> list[Message]:
    text = " ".join(f"item{i}" for i in range(words))
    return [Message(Role.USER, f"Here is a list: {text}. What was the first item?")]


def test_long_prompts_are_evaluated_in_batches_with_the_same_distribution(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches keep the test fast; the code path is the one 512-token batches take.
    monkeypatch.setattr(llama_backend, "N_BATCH", 32)
    prompt = long_prompt(30)
    n_prompt = model.count_prompt_tokens(prompt)
    assert n_prompt > 3 * 32
    evaluated = counting_evals(model, monkeypatch)
    model.clear_state()
    batched = first_token(model, prompt)[1]
    # All but the last token in batches, then generate() evaluates the last one.
    assert evaluated[-1] == 1 and sum(evaluated) == n_prompt
    assert len(evaluated) > 3 and all(size <= 32 for size in evaluated)
    monkeypatch.setattr(llama_backend, "N_BATCH", 10**6)  # generate() evaluates it all at once
    evaluated.clear()
    model.clear_state()
    whole = first_token(model, prompt)[1]
    assert evaluated == [n_prompt]
    assert_same_distribution(whole, batched)


def test_reading_a_long_prompt_reports_its_progress_batch_by_batch(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llama_backend, "N_BATCH", 32)
    prompt = long_prompt(30)
    model.clear_state()
    chunks = list(
        model.stream_chat(prompt, GenParams(temperature=0.0, max_tokens=2), threading.Event())
    )
    total = model.count_prompt_tokens(prompt)
    progress = [(c.read, c.total) for c in chunks if isinstance(c, PromptProgress)]
    # Nothing read yet, then each batch of all but the last token, then the whole prompt.
    expected = [(0, total), *((min(n, total - 1), total) for n in range(32, total - 1 + 31, 32))]
    assert progress == [*expected, (total, total)]
    first_text = next(i for i, c in enumerate(chunks) if isinstance(c, TextChunk))
    assert isinstance(chunks[first_text - 1], PromptProgress), "read in full before the answer"

    # A prompt found in the cache is read at once: its start says so.
    again = list(
        model.stream_chat(prompt, GenParams(temperature=0.0, max_tokens=2), threading.Event())
    )
    first = next(c for c in again if isinstance(c, PromptProgress))
    assert (first.read, first.total) == (total - 1, total)


def test_cancel_is_felt_between_prompt_batches(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llama_backend, "N_BATCH", 32)
    prompt = long_prompt(30)
    model.clear_state()
    cancel = CancelAfter(3)  # two batches, then the flag is up
    texts, end = run(model, prompt, cancel=cancel)
    assert end.finish_reason is FinishReason.CANCELLED
    assert (texts, end.content, end.usage.completion_tokens) == ([], "", 0)
    assert cancel.checks == 3
    assert model.shared_prefix(prompt, None) == 2 * 32, "the batches read are kept"
    # The half-evaluated prompt left the cache consistent: it is continued, and the next
    # token is drawn from the distribution a fresh evaluation gives.
    again, continued = first_token(model, prompt)
    assert again.timings.cached_tokens == 2 * 32
    model.clear_state()
    fresh = first_token(model, prompt)[1]
    assert_same_distribution(fresh, continued)


def filling(model: LlamaModel, n_tokens: int) -> list[Message]:
    """A prompt of exactly `n_tokens` tokens."""
    for words in range(n_tokens):
        text = long_prompt(words)[0].content
        for padding in range(8):
            messages = [Message(Role.USER, text + " x" * padding)]
            if model.count_prompt_tokens(messages) == n_tokens:
                return messages
    raise AssertionError(f"no prompt of exactly {n_tokens} tokens")


def test_a_prompt_over_the_context_is_an_error_not_a_crash(starter_model: Path) -> None:
    # llama.cpp rounds this context up to 256, but llama-cpp-python's buffers hold 250.
    small = LlamaEngine().load(LoadRequest(starter_model, n_ctx=250, threads=2))
    try:
        assert small.report.n_ctx == 250
        texts, end = run(small, long_prompt(100))
        assert texts == []
        assert end.finish_reason is FinishReason.ERROR
        assert end.error is not None
        assert end.error.startswith("the prompt is ") and "the context holds 250" in end.error
        # A prompt that leaves room for one token, which the answer fills: length. (An answer
        # does not end before its first token, so this does not depend on what the model says.)
        end = run(small, filling(small, 249), GenParams(temperature=0.0, max_tokens=None))[1]
        assert end.finish_reason is FinishReason.LENGTH
        assert end.usage.completion_tokens == 1
    finally:
        small.close()


def test_an_empty_prompt_is_an_error_not_a_crash(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model, "_prompt_tokens", lambda messages, think: [])
    texts, end = run(model, QUESTION)
    assert (texts, end.finish_reason) == ([], FinishReason.ERROR)
    assert end.error == "the chat template rendered an empty prompt"


def test_count_prompt_tokens_includes_the_template(model: LlamaModel) -> None:
    bare = len(llama_cpp_tokens(model, "What is 2+2?"))
    assert model.count_prompt_tokens(QUESTION) > bare + 5


def llama_cpp_tokens(model: LlamaModel, text: str) -> list[int]:
    return model._llama.tokenize(text.encode(), add_bos=False, special=False)


@pytest.mark.parametrize("limit", [0, 1, 3, 7])
def test_truncate_keeps_a_start_that_fits(model: LlamaModel, limit: int) -> None:
    text = "Café crème, naïve façade — 日本語のテキスト and more words at the end."
    head = model.truncate(text, limit)
    assert text.startswith(head)
    assert len(llama_cpp_tokens(model, head)) <= limit
    assert "\ufffd" not in head
    assert model.truncate(text, 1000) == text


def test_multibyte_characters_split_across_tokens_arrive_whole(
    model: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the model writes in Japanese depends on it; the tokens are forced instead: the
    # starter's own tokenizer cuts these characters into pieces of one or two bytes.
    japanese = "日本語のテキスト"
    split = llama_cpp_tokens(model, japanese)
    pieces = [model._piece(token) for token in split]
    assert b"".join(pieces) == japanese.encode()
    assert any("\ufffd" in piece.decode("utf-8", errors="replace") for piece in pieces)
    scripted = iter([*split, model._llama.token_eos()])
    with monkeypatch.context() as forced:
        forced.setattr(decoding.Sampler, "sample", lambda self: next(scripted))
        texts, end = run(model, [Message(Role.USER, "Say something in Japanese.")])
    assert (end.content, end.finish_reason) == (japanese, FinishReason.STOP)
    assert "".join(texts) == japanese
    assert all("\ufffd" not in text for text in texts)
    # And whatever the model itself writes arrives whole too.
    messages = [Message(Role.USER, "Translate to Japanese: good morning, my friend.")]
    texts, end = run(model, messages, GenParams(temperature=0.0, max_tokens=40))
    assert "".join(texts) == end.content
    assert all("\ufffd" not in text for text in texts)


def test_hold_back_shows_text_that_cannot_start_a_stop_marker() -> None:
    stops = ("<|im_end|>", "</s>")
    assert llama_backend._hold_back("Hello", stops) == ("Hello", "", False)
    assert llama_backend._hold_back("Hello <|im", stops) == ("Hello ", "<|im", False)
    assert llama_backend._hold_back("a </", stops) == ("a ", "</", False)
    assert llama_backend._hold_back("<b>", stops) == ("<b>", "", False)
    assert llama_backend._hold_back("done</s> more", stops) == ("done", "", True)
    assert llama_backend._hold_back("x<|im_end|>y</s>", stops) == ("x", "", True)


def test_a_non_gguf_file_fails_before_llama_cpp_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("llama.cpp was given the file")

    monkeypatch.setattr(llama_cpp, "Llama", never)
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("just some text, not a model\n")
    with pytest.raises(GGUFError, match="not a GGUF file"):
        LlamaEngine().load(LoadRequest(text_file))


def test_a_truncated_file_fails_before_llama_cpp_sees_it(
    starter_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("llama.cpp was given the file")

    monkeypatch.setattr(llama_cpp, "Llama", never)
    truncated = tmp_path / "truncated.gguf"
    with starter_model.open("rb") as source:
        truncated.write_bytes(source.read(5 * 1024 * 1024))
    with pytest.raises(GGUFError, match=r"truncated\.gguf"):
        LlamaEngine().load(LoadRequest(truncated))


def test_a_model_llama_cpp_rejects_is_a_one_line_load_error(
    starter_model: Path, tmp_path: Path
) -> None:
    # A valid GGUF whose architecture llama.cpp does not know.
    path = patched_copy(
        starter_model, tmp_path / "odd.gguf", b"\x05\0\0\0\0\0\0\0llama", b"\x05\0\0\0\0\0\0\0lxxma"
    )
    with pytest.raises(ModelLoadError) as caught:
        LlamaEngine().load(LoadRequest(path, log_file=tmp_path / "native.log"))
    message = str(caught.value)
    assert message == "cannot load odd.gguf: unknown model architecture: 'lxxma'"


def test_loading_and_generating_write_nothing_to_the_terminal(
    starter_model: Path, tmp_path: Path
) -> None:
    log = tmp_path / "native.log"
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_GENERATE, str(starter_model), str(log)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert (result.stdout, result.stderr) == (b"", b"")
    text = log.read_bytes()
    assert b"llama_model_loader: loaded meta data" in text  # native, via the log callback
    assert b"Model metadata:" in text  # llama-cpp-python's print(), via the redirect
