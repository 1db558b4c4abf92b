from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from termllm.state import StateFile


def test_remembers_and_forgets_local_models(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state" / "state.json")
    model = tmp_path / "m.gguf"
    state.remember_local_model(model)
    state.remember_local_model(model)
    state.mark_used(model, when=123.0)
    assert state.read().local_models == [str(model)]
    assert state.read().last_used == {str(model): 123.0}
    assert state.forget_local_model(model) is True
    assert state.read().local_models == [] and state.read().last_used == {}
    assert state.forget_local_model(model) is False


def test_a_damaged_state_file_is_ignored_then_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    state = StateFile(path)
    assert state.read().local_models == []
    state.mark_used(tmp_path / "m.gguf", when=1.0)
    assert state.read().last_used == {str(tmp_path / "m.gguf"): 1.0}


def test_concurrent_updates_are_not_lost(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state.json")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: state.mark_used(tmp_path / f"{n}.gguf", when=n), range(40)))
    assert len(state.read().last_used) == 40
