import pytest

from termllm.model_files import model_base_name, model_stem, quant_from_filename, split_part


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("model.q4_k_m.gguf", "Q4_K_M"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("qwen2.5-7b-instruct-iq4_xs-00001-of-00002.gguf", "IQ4_XS"),
        ("phi-3-mini-f16.gguf", "F16"),
        ("gemma-bf16.gguf", "BF16"),
        ("Q8_0/model-Q8_0.gguf", "Q8_0"),
        ("model.gguf", None),
        ("sub/Q4_K_M-notes/model.gguf", None),
    ],
)
def test_quant_from_filename(name: str, quant: str | None) -> None:
    assert quant_from_filename(name) == quant


def test_split_parts_are_recognised() -> None:
    part = split_part("dir/Big-Q4_K_M-00002-of-00003.gguf")
    assert part is not None
    assert (part.stem, part.index, part.count) == ("Big-Q4_K_M", 2, 3)
    assert split_part("single.gguf") is None


def test_names() -> None:
    assert model_stem("a/b/Big-Q4_K_M-00001-of-00003.gguf") == "Big-Q4_K_M"
    assert model_base_name("SmolLM2-135M-Instruct.Q4_1.gguf") == "SmolLM2-135M-Instruct"
    assert model_base_name("plain.gguf") == "plain"
