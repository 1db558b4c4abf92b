from pathlib import Path

import pytest

from termllm.domain import HubRef, NameRef, PathRef, ServerRef
from termllm.errors import ModelRefError
from termllm.refs import parse_model_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("owner/repo", HubRef("owner/repo")),
        ("owner/repo:q4_k_m", HubRef("owner/repo", quant="Q4_K_M")),
        ("owner/repo@v1.0:Q8_0", HubRef("owner/repo", revision="v1.0", quant="Q8_0")),
        (
            "owner/repo/sub/file-Q4_K_M.gguf",
            HubRef("owner/repo", filename="sub/file-Q4_K_M.gguf"),
        ),
        (
            "owner/repo@abc1234/file.gguf",
            HubRef("owner/repo", revision="abc1234", filename="file.gguf"),
        ),
        ("smollm2-135m-instruct", NameRef("smollm2-135m-instruct")),
    ],
)
def test_parses_the_reference_grammar(text: str, expected: object) -> None:
    assert parse_model_ref(text) == expected


def test_an_existing_relative_file_is_a_path_even_with_slashes(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "x.gguf").write_bytes(b"GGUF")
    assert parse_model_ref("models/x.gguf", cwd=tmp_path) == PathRef(tmp_path / "models/x.gguf")


def test_explicit_paths_are_paths_whether_or_not_they_exist(tmp_path: Path) -> None:
    assert parse_model_ref("./nope.gguf", cwd=tmp_path) == PathRef(tmp_path / "nope.gguf")
    assert parse_model_ref("/abs/m.gguf") == PathRef(Path("/abs/m.gguf"))
    assert parse_model_ref("bare.gguf", cwd=tmp_path) == PathRef(tmp_path / "bare.gguf")


@pytest.mark.parametrize(
    "text",
    ["", "  ", "name:Q4_K_M", "owner/repo:Q4 K", "owner/repo/readme.md", "owner/../x", "a/b@-x"],
)
def test_rejects_malformed_references_with_a_clear_message(text: str) -> None:
    with pytest.raises(ModelRefError) as caught:
        parse_model_ref(text)
    assert "\n" not in str(caught.value)


def test_hub_refs_print_back_as_typed() -> None:
    assert str(HubRef("o/r", "v2", quant="Q8_0")) == "o/r@v2:Q8_0"
    assert str(HubRef("o/r", filename="f.gguf")) == "o/r/f.gguf"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@box/qwen3:32b", ServerRef("box", "qwen3:32b")),
        ("@box/Qwen/Qwen2.5-72B", ServerRef("box", "Qwen/Qwen2.5-72B")),
        ("  @lab-2/m  ", ServerRef("lab-2", "m")),
    ],
)
def test_a_server_reference_keeps_the_model_id_whole(text: str, expected: ServerRef) -> None:
    assert parse_model_ref(text) == expected
    assert str(expected) == text.strip()


@pytest.mark.parametrize(
    "text",
    ["@", "@box", "@BOX/x", "@box/", "@box/  ", "@/m", "@b x/m", "@box/a\tb", "@box/" + "m" * 257],
)
def test_a_malformed_server_reference_is_one_line(text: str) -> None:
    with pytest.raises(ModelRefError) as caught:
        parse_model_ref(text)
    assert "\n" not in str(caught.value) and "\t" not in str(caught.value)
