"""The per-token work of generation on llama.cpp's own API: a sampler chain and one-token
decode steps, a few native calls a token with nothing copied into Python.

`Llama.generate` builds its sampler anew for each call, matches the whole prompt against its
cache token by token in Python, and goes through several Python layers for every token; the
decode loop (termllm.engine.llama_backend) uses these instead, with `Llama` still the owner of
the context: each step keeps its `input_ids` and `n_tokens` right, which saving a state and
prefix matching read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from termllm.domain import GenParams
from termllm.engine import kv_state
from termllm.engine.base import SpeedTest

if TYPE_CHECKING:
    from llama_cpp import Llama

PENALTY_LAST_N = 64
"""Generated tokens the repeat penalty looks back on (llama-cpp-python's `last_n_tokens_size`)."""

WARM_UP_TOKENS = 32
"""A batch big enough to take the batched kernels' path, evaluated before the speed test."""


class Sampler:
    """llama-cpp-python's sampler chain for `params` (penalty, then greedy, or top-k, top-p,
    min-p, temperature and a seeded draw), with the same choices made faster.

    The penalty looks every candidate up in a hash map of recent tokens: over a whole
    vocabulary (49,152 tokens for the starter model) that costs more per token than all the
    rest of sampling. It only ever lowers logits (when above 1), and at most PENALTY_LAST_N
    tokens carry one, so the tokens it can leave among the best `k` are among the best
    `k + PENALTY_LAST_N` before it: a top-k of that size in front of it changes nothing that
    follows, and greedy sampling is the case k = 1.
    """

    def __init__(self, llama: Llama, params: GenParams) -> None:
        import llama_cpp

        self._ctx = llama.ctx
        self._sample = llama_cpp.llama_sampler_sample
        self._accept = llama_cpp.llama_sampler_accept
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        self._chain = chain

        def add(sampler: int | None) -> None:
            llama_cpp.llama_sampler_chain_add(chain, sampler)  # the chain owns it from now

        greedy = params.temperature <= 0
        kept = 1 if greedy else params.top_k
        if params.repeat_penalty != 1.0:
            if params.repeat_penalty > 1.0 and kept > 0:
                add(llama_cpp.llama_sampler_init_top_k(kept + PENALTY_LAST_N))
            add(
                llama_cpp.llama_sampler_init_penalties(
                    llama.n_vocab(), PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0
                )
            )
        if greedy:
            add(llama_cpp.llama_sampler_init_greedy())
            return
        seed = llama_cpp.LLAMA_DEFAULT_SEED if params.seed is None else params.seed
        add(llama_cpp.llama_sampler_init_top_k(params.top_k))
        add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        add(llama_cpp.llama_sampler_init_dist(seed))

    def sample(self) -> int:
        """A token drawn from the logits of the last token evaluated; the penalty counts it."""
        return int(self._sample(self._chain, self._ctx, -1))

    def accept(self, token: int) -> None:
        """Count a token the model did not choose (one written into the answer for it)."""
        self._accept(self._chain, token)

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_sampler_free(self._chain)


class TokenStep:
    """Evaluates one token after those the context holds, through a batch made once."""

    def __init__(self, llama: Llama) -> None:
        import llama_cpp

        self._llama = llama
        self._ctx = llama.ctx
        self._decode = llama_cpp.llama_decode
        self._free = llama_cpp.llama_batch_free
        batch = self._batch = llama_cpp.llama_batch_init(1, 0, 1)
        batch.n_tokens = 1
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = kv_state.SEQUENCE
        batch.logits[0] = True
        self._token, self._pos = batch.token, batch.pos

    def __call__(self, token: int) -> None:
        llama = self._llama
        n_tokens = llama.n_tokens
        self._token[0] = token
        self._pos[0] = n_tokens
        code = self._decode(self._ctx, self._batch)
        if code != 0:  # the context is unchanged: the token is not counted
            raise RuntimeError(f"llama_decode returned {code}")
        llama.input_ids[n_tokens] = token
        llama.n_tokens = n_tokens + 1

    def close(self) -> None:
        self._free(self._batch)


def speed_test(llama: Llama, prompt_tokens: int, generated_tokens: int) -> SpeedTest:
    """llama-bench's pp and tg: ordinary vocabulary tokens evaluated without sampling, each
    from an empty cache after a warm-up run, the prompt in batches and the generated tokens
    one at a time through the decode loop's own step."""
    n_vocab = llama.n_vocab()
    # Tokens from the middle of the vocabulary: real words, no special tokens.
    prompt = [n_vocab // 4 + (i * 7919) % (n_vocab // 2) for i in range(prompt_tokens)]
    generated = [prompt[i % len(prompt)] for i in range(generated_tokens)] if prompt else []
    step = TokenStep(llama)
    try:
        # The first evaluations of a context allocate its buffers and start its threads.
        kv_state.clear(llama)
        if prompt:
            llama.eval(prompt[:WARM_UP_TOKENS])
            step(prompt[0])
        kv_state.clear(llama)
        started = time.perf_counter()
        llama.eval(prompt)
        prompt_s = time.perf_counter() - started
        kv_state.clear(llama)
        started = time.perf_counter()
        for token in generated:
            step(token)
        decode_s = time.perf_counter() - started
    finally:
        step.close()
        kv_state.clear(llama)
    return SpeedTest(
        prompt_tokens=prompt_tokens,
        prompt_tokens_per_s=prompt_tokens / prompt_s if prompt_s > 0 else 0.0,
        generated_tokens=generated_tokens,
        decode_tokens_per_s=generated_tokens / decode_s if decode_s > 0 else 0.0,
    )
