"""The next-token distribution of a loaded starter model and the evaluations behind it, for
tests that reach the same prompt by two evaluation schedules (whole, in batches, from the KV
cache, from a restored state).

llama.cpp does not promise bit-identical logits across batch shapes (ggml-org/llama.cpp#3014):
other kernels and summation orders are chosen for other batch sizes and CPU features, so a
greedy answer of many tokens may part at the first near-tie. What a schedule must not change
is the distribution the next token is drawn from, which these helpers compare.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import llama_cpp
import numpy as np
import numpy.typing as npt
import pytest

from termllm.domain import Completion, GenParams, Message
from termllm.engine.llama_backend import LlamaModel

FIRST_TOKEN = GenParams(temperature=0.0, seed=1, max_tokens=1)

LOGIT_TOLERANCE = 0.075
"""The largest difference allowed between two schedules' logits, as a share of their spread
(max - min: about 40 for the starter model, so about 3 in absolute terms).

Measured with the starter model on AVX2 without AVX-512, against one batch for the whole
prompt: batches of 8 to 32 tokens and the last token alone differ by up to 2.0 % of the
spread, every token alone by 2.7 %, a follow-up read after its answer was decoded token by
token (as from a restored state) by 3.3 %. Evaluation mistakes land above this: the last token
evaluated twice differs by 10 to 12 %, logits one position early by 43 to 79 %, another
prompt's logits (stale after a restore) by 56 %.
"""

NEAR_TIE = 0.025
"""Tokens whose logits are this close to the top (as a share of the spread) may take its place
from one schedule to another; otherwise the top token must be the same. Measured: the top
token's lead over the second changes by at most 0.8 % of the spread between schedules.
"""


def next_token_logits(model: LlamaModel) -> npt.NDArray[np.float32]:
    """The logits of the last token llama.cpp evaluated: what the next token is sampled from."""
    llama = model._llama
    row = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return np.ctypeslib.as_array(row, shape=(llama.n_vocab(),)).copy()


def first_token(
    model: LlamaModel, messages: Sequence[Message]
) -> tuple[Completion, npt.NDArray[np.float32]]:
    """Answer with one greedy token: the completion and the logits that token was drawn from.

    With one token to sample, generation stops before evaluating it, so the last evaluation
    is the prompt's own last token.
    """
    *_, end = model.stream_chat(messages, FIRST_TOKEN, threading.Event())
    assert isinstance(end, Completion)
    return end, next_token_logits(model)


def counting_evals(model: LlamaModel, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the evaluations llama.cpp is asked for from now on, in order."""
    llama = model._llama
    evaluated: list[int] = []
    real_eval = llama.eval

    def counting_eval(tokens: Sequence[int]) -> None:
        evaluated.append(len(tokens))
        real_eval(tokens)

    monkeypatch.setattr(llama, "eval", counting_eval)
    return evaluated


def assert_same_distribution(
    expected: npt.NDArray[np.float32], actual: npt.NDArray[np.float32]
) -> None:
    """Logits within LOGIT_TOLERANCE, and the same top token unless it leads by a near-tie."""
    spread = float(expected.max() - expected.min())
    logit_gap = float(np.abs(expected - actual).max())
    probability_gap = float(np.abs(softmax(expected) - softmax(actual)).max())
    top, chosen = int(expected.argmax()), int(actual.argmax())
    described = (
        f"top token {top} vs {chosen}; largest logit difference {logit_gap:.4g}"
        f" ({logit_gap / spread:.2%} of the spread {spread:.4g});"
        f" largest probability difference {probability_gap:.4g}"
    )
    assert logit_gap <= LOGIT_TOLERANCE * spread, described
    assert expected[chosen] >= expected[top] - NEAR_TIE * spread, described


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = np.exp(logits.astype(np.float64) - float(logits.max()))
    probabilities: npt.NDArray[np.float64] = shifted / shifted.sum()
    return probabilities
