"""The chat app: a conversation list, the conversation, a prompt and a status bar."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.theme import Theme
from textual.widgets import OptionList

from termllm.app import Services
from termllm.domain import Completion
from termllm.engine.base import LoadReport
from termllm.errors import TermllmError
from termllm.tui.keymap import DEFAULT_KEYS as KEYS
from termllm.tui.keymap import parse_keymap
from termllm.tui.screens.help import HelpScreen, help_rows
from termllm.tui.session import ChatSession
from termllm.tui.streaming import LiveAnswer
from termllm.tui.themes import CODE_VARIABLE_DEFAULTS, load_themes
from termllm.tui.widgets.messages import ConversationView
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import ConversationList
from termllm.tui.widgets.status import StatusBar, placement_text

logger = logging.getLogger(__name__)

DEFAULT_THEME = "termllm-dark"


class ChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "termllm"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            KEYS["new_conversation"], "new_conversation", "New conversation", id="new_conversation"
        ),
        Binding(KEYS["cancel"], "cancel", "Cancel the answer", id="cancel"),
        # `?` as well, outside the prompt: the prompt keeps typed characters for itself.
        Binding(f"{KEYS['help']},question_mark", "help", "Help", id="help"),
        Binding(KEYS["focus_sidebar"], "focus_sidebar", "Conversations", id="focus_sidebar"),
        Binding(KEYS["focus_prompt"], "focus_prompt", "Prompt", id="focus_prompt"),
        Binding(KEYS["switch_theme"], "change_theme", "Theme", id="switch_theme"),
        Binding(KEYS["quit"], "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(
        self,
        services: Services,
        model_ref: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__()
        self.services = services
        self.session = ChatSession(services, model_ref)
        self.conversation_id: str | None = None
        self.requested_conversation = conversation_id
        # The model streams one answer at a time; it keeps streaming (and is saved) while the
        # user looks at other conversations.
        self.live: LiveAnswer | None = None

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # Textual's own themes lack the code-block colours that app.tcss uses.
        return {**super().get_theme_variable_defaults(), **CODE_VARIABLE_DEFAULTS}

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            sidebar = ConversationList(id="sidebar")
            sidebar.border_title = "Conversations"
            yield sidebar
            with Vertical(id="chat"):
                yield ConversationView(id="messages")
                yield PromptInput(id="prompt")
        yield StatusBar(id="status")

    async def on_mount(self) -> None:
        self._apply_preferences()
        self.query_one(PromptInput).focus()
        conversation_model = None
        if self.requested_conversation:
            try:
                conversation = self.services.history.find(self.requested_conversation)
            except TermllmError as err:
                self.notify(err.message, severity="error")
            else:
                conversation_model = conversation.model
                await self.show_conversation(conversation.id)
        self.refresh_sidebar()
        self._preload(conversation_model)

    def _apply_preferences(self) -> None:
        """Themes (built-in and the user's), the remembered theme and the keymap setting; a
        broken theme file or key is a notification, never a crash."""
        preferences = self.services.preferences
        loaded = load_themes(self.services.config.paths.config_file.parent / "themes")
        for theme in loaded.themes.values():
            self.register_theme(theme)
        wanted = preferences.theme()
        if wanted not in self.available_themes:
            loaded.problems.append(f"theme '{wanted}' is not installed; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME
        self.theme = wanted
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        overrides, key_problems = parse_keymap(preferences.keymap())
        self.set_keymap(overrides)
        for problem in [*loaded.problems, *key_problems]:
            self.notify(problem, severity="warning", timeout=10)

    def _remember_theme(self, theme: Theme) -> None:
        self.services.preferences.remember_theme(theme.name)

    @property
    def generating(self) -> bool:
        return self.live is not None

    def refresh_sidebar(self) -> None:
        conversations = self.services.history.recent(None)
        busy = self.live.conversation_id if self.live else None
        self.query_one(ConversationList).show(conversations, self.conversation_id, busy)

    def _show_busy(self) -> None:
        live = self.live
        busy = ""
        if live is not None:
            busy = "answering" if live.view else "answering in another conversation"
        self.query_one(StatusBar).change(busy=busy)

    async def show_conversation(self, conversation_id: str | None) -> None:
        """Show a saved conversation (None: a new, empty one) and its context use."""
        self.conversation_id = conversation_id
        rows: list[tuple[str, str, str | None]] = []
        used = 0
        if conversation_id is not None:
            _, records = self.services.history.transcript(conversation_id)
            rows = [(r.role, r.content, r.finish_reason) for r in records]
            answered = [r for r in records if r.prompt_tokens is not None]
            if answered:
                last = answered[-1]
                used = (last.prompt_tokens or 0) + (last.completion_tokens or 0)
        view = self.query_one(ConversationView)
        await view.show(rows)
        live = self.live
        if live is not None:
            live.hide()
            # Its question is saved and its answer not yet: the answer continues on screen.
            if live.conversation_id == conversation_id is not None and rows[-1][0] == "user":
                await live.show_in(await view.add_answer())
        self.query_one(StatusBar).change(used_tokens=used)
        self.query_one(ConversationList).select(conversation_id)
        self._show_busy()

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        chosen = event.option.id
        if chosen is not None and chosen != self.conversation_id:
            await self.show_conversation(chosen)

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        if self.live is not None:
            where = "" if self.live.view else " in another conversation"
            self.notify(
                f"an answer is still streaming{where} (one at a time): wait, or Esc cancels it",
                severity="warning",
            )
            return
        view = await self.query_one(ConversationView).add_exchange(event.text)
        # The worker never waits for the screen: it leaves text in the answer's buffer, and the
        # screen takes it in frames paced to the CPU time drawing costs.
        self.live = LiveAnswer(self, view)
        self._show_busy()
        self._generate(self.conversation_id, event.text, self.live)

    async def action_new_conversation(self) -> None:
        await self.show_conversation(None)
        self.query_one(PromptInput).focus()

    def action_cancel(self) -> None:
        """Stop the streaming answer, whichever conversation is on screen."""
        if self.live is not None:
            self.live.cancel.set()

    async def action_quit(self) -> None:
        # A streaming answer stops at the next token and is saved as cancelled before the
        # process ends (Python waits for worker threads at exit).
        self.action_cancel()
        self.exit()

    def action_help(self) -> None:
        bindings = [*self.BINDINGS, *PromptInput.BINDINGS]
        self.push_screen(HelpScreen(help_rows(b for b in bindings if isinstance(b, Binding))))

    def action_focus_sidebar(self) -> None:
        self.query_one(ConversationList).focus()

    def action_focus_prompt(self) -> None:
        self.query_one(PromptInput).focus()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _preload(self, conversation_model: str | None) -> None:
        """Load the model at start-up so the first answer does not wait for it."""
        try:
            model = self.session.choose(conversation_model)
            self.call_from_thread(self._model_status, model.ref, None)
            report = self.session.ensure_loaded(model).report
        except TermllmError as err:
            self.call_from_thread(self._load_failed, err.message)
            return
        except Exception as err:
            logger.exception("loading the model failed")
            self.call_from_thread(self._load_failed, f"{type(err).__name__}: {err}")
            return
        self.call_from_thread(self._model_status, model.ref, report)

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, conversation_id: str | None, text: str, live: LiveAnswer) -> None:
        cancel = live.cancel

        def show(callback: Callable[..., object], *args: object) -> None:
            """Run `callback` on the event loop and wait for it (rare events only)."""
            try:
                self.call_from_thread(callback, *args)
            except RuntimeError:
                # The app has closed: stop generating; the session still saves the answer.
                cancel.set()

        try:
            completion = self.session.ask(
                conversation_id,
                text,
                cancel,
                on_saved=lambda cid: show(self._question_saved, cid, live),
                on_model=lambda ref, report: show(self._model_status, ref, report),
                on_text=live.unshown.add,
            )
        except TermllmError as err:
            show(self._failed, live, err.message)
            return
        except Exception as err:
            # Anything unexpected still ends as a notification: a worker traceback on screen
            # would take the user's conversation with it.
            logger.exception("generation failed")
            show(self._failed, live, f"{type(err).__name__}: {err}")
            return
        show(self._answered, live, completion)

    def _question_saved(self, conversation_id: str, live: LiveAnswer) -> None:
        live.conversation_id = conversation_id
        # No view means the user moved to another conversation meanwhile.
        if live.view is not None:
            self.conversation_id = conversation_id
        self.refresh_sidebar()

    def _model_status(self, model_ref: str, report: LoadReport | None) -> None:
        status = self.query_one(StatusBar)
        if report is None:
            status.change(model=model_ref, loading=True, placement="", n_ctx=0)
        else:
            status.change(
                model=model_ref, loading=False, placement=placement_text(report), n_ctx=report.n_ctx
            )

    def _load_failed(self, message: str) -> None:
        self.query_one(StatusBar).change(loading=False)
        self.notify(message, title="Could not load the model", severity="error")

    async def _answered(self, live: LiveAnswer, completion: Completion) -> None:
        self.live = None
        on_screen = live.view is not None
        await live.finish(completion)
        status = self.query_one(StatusBar)
        status.change(tokens_per_s=completion.timings.decode_tokens_per_s)
        if on_screen:
            usage = completion.usage
            status.change(used_tokens=usage.prompt_tokens + usage.completion_tokens)
        if completion.error:
            self.notify(completion.error, title="Generation failed", severity="error")
        self._show_busy()
        self.refresh_sidebar()

    async def _failed(self, live: LiveAnswer, message: str) -> None:
        self.live = None
        await live.fail(message)
        self.query_one(StatusBar).change(loading=False)
        self.notify(message, title="No answer", severity="error")
        self._show_busy()
        self.refresh_sidebar()
