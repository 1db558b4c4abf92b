"""The chat app: a conversation list, the conversation, a prompt and a status bar."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.theme import BUILTIN_THEMES, Theme
from textual.widgets import OptionList

from termllm.app import Services
from termllm.domain import Completion
from termllm.errors import TermllmError
from termllm.services.turn import Turn
from termllm.tui import conversation_actions
from termllm.tui.bindings import app_bindings
from termllm.tui.branches import Branches, shown_labels
from termllm.tui.chat_state import ConversationDeleted, ConversationsChanged
from termllm.tui.commands import key_actions, palette_commands
from termllm.tui.copying import Copier
from termllm.tui.failures import failure_text
from termllm.tui.keymap import KeyHints, parse_keymap
from termllm.tui.markdown_paint import warm_up
from termllm.tui.model_actions import ModelActions
from termllm.tui.navigation import BREAKPOINTS, pages_conversation
from termllm.tui.prompt_history import HISTORY_LIMIT
from termllm.tui.screens.help import HelpScreen, help_rows
from termllm.tui.session import ChatSession
from termllm.tui.streaming import LiveAnswer, LiveTurn, TextEnded
from termllm.tui.themes import CODE_VARIABLE_DEFAULTS, load_themes
from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import ConversationView, ShownMessage
from termllm.tui.widgets.prompt import PromptInput, prompt_placeholder
from termllm.tui.widgets.sidebar import SIDEBAR_LIMIT, Sidebar
from termllm.tui.widgets.status import StatusBar

if TYPE_CHECKING:
    from termllm.store import ConversationRecord

logger = logging.getLogger(__name__)

DEFAULT_THEME = "termllm-dark"
# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_S = 0.001
# A process ended by these keeps what it was doing, as Ctrl+Q does.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class ChatApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "termllm"
    BINDINGS: ClassVar[list[BindingType]] = app_bindings()
    HORIZONTAL_BREAKPOINTS = BREAKPOINTS

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
        self._switch_interval = sys.getswitchinterval()
        overrides, self._keymap_problems = parse_keymap(services.preferences.keymap())
        self.keymap_overrides = overrides
        """The user's keys for binding ids, as given to Textual (it keeps no public copy)."""
        self.key_hints = KeyHints(overrides)
        self.branches = Branches(self, services.history, self.key_hints)
        self.model_actions = ModelActions(self, self)
        self.copier = Copier(self)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # A user's theme may lack the code-block colours that app.tcss uses.
        return {**super().get_theme_variable_defaults(), **CODE_VARIABLE_DEFAULTS}

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            sidebar = Sidebar(
                self.services.history.filter_conversations,
                filter_key=self.key_hints["filter_conversations"],
                id="sidebar",
            )
            sidebar.border_title = "Conversations"
            yield sidebar
            with Vertical(id="chat"):
                yield ConversationView(id="messages")
                yield PromptInput(id="prompt", placeholder=prompt_placeholder(self.key_hints))
        yield StatusBar(cancel_key=self.key_hints["cancel"], id="status")

    async def on_mount(self) -> None:
        self._apply_preferences()
        prompt = self.query_one(PromptInput)
        prompt.focus()
        prompt.load_history(partial(self.services.history.recent_prompts, HISTORY_LIMIT))
        opened: ConversationRecord | None = None
        if self.requested_conversation:
            try:
                opened = self.services.history.find(self.requested_conversation)
            except TermllmError as err:
                self.notify(err.message, severity="error")
            else:
                await self.show_conversation(opened.id)
        self.refresh_sidebar()
        self._preload(opened)
        self._warm_up_painting()
        # The model's thread takes the GIL back for each token's sampling; while the screen is
        # drawn it would wait up to the default 5 ms interval each time, and llama.cpp with it.
        sys.setswitchinterval(GIL_SWITCH_S)
        # The objects made while starting (modules, classes, the screen) live as long as the
        # app: moved out of the collector's way, a full collection scans only what came after,
        # and no longer stalls the screen for 50 ms in the middle of an answer.
        self.call_after_refresh(gc.freeze)
        loop = asyncio.get_running_loop()
        for number in ENDING_SIGNALS:
            loop.add_signal_handler(number, self._end_by_signal, number)

    def _apply_preferences(self) -> None:
        """Themes (built-in and the user's), the remembered theme and the keymap setting; a
        broken theme file or key is a notification, never a crash."""
        preferences = self.services.preferences
        loaded = load_themes(self.services.config.paths.config_file.parent / "themes")
        # Textual's own themes lack the code-block colours, and the picker (F9) lists only
        # the themes the README documents and the user's; a user's file may bring one back.
        for name in BUILTIN_THEMES:
            self.unregister_theme(name)
        for theme in loaded.themes.values():
            self.register_theme(theme)
        wanted = preferences.theme()
        if wanted not in self.available_themes:
            loaded.problems.append(f"theme '{wanted}' is not installed; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME
        self.theme = wanted
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_keymap(self.keymap_overrides)
        for problem in [*loaded.problems, *self._keymap_problems]:
            self.notify(problem, severity="warning", timeout=10)

    def _remember_theme(self, theme: Theme) -> None:
        self.services.preferences.remember_theme(theme.name)

    @property
    def generating(self) -> bool:
        return self.live is not None

    def refuse_while_streaming(self) -> bool:
        """True (after saying so) while an answer streams: the model answers one at a time."""
        if self.live is not None:
            self.notify(
                f"an answer is still streaming: {self.key_hints['cancel']} cancels it",
                severity="warning",
            )
        return self.live is not None

    def refresh_sidebar(self) -> None:
        conversations = self.services.history.recent(SIDEBAR_LIMIT + 1)
        busy = self.live.conversation_id if self.live else None
        self.query_one(Sidebar).show(conversations, self.conversation_id, busy)

    def _show_busy(self) -> None:
        live = self.live
        busy = ""
        if live is not None:
            busy = "answering" if live.view else "answering in another conversation"
        self.query_one(StatusBar).change(busy=busy)
        # Each blink is a screen update, taken from the model's CPU while it answers.
        self.query_one(PromptInput).cursor_blink = live is None

    async def show_conversation(self, conversation_id: str | None) -> None:
        """Show a saved conversation (None: a new, empty one) and its context use."""
        self.conversation_id = conversation_id
        self.branches.abort_edit()
        entries = self.services.history.branch(conversation_id) if conversation_id else []
        records = [entry.message for entry in entries]
        rows = [
            ShownMessage(
                r.role, r.content, r.finish_reason, r.error, r.reasoning, r.reasoning_tokens
            )
            for r in records
        ]
        used = 0
        answered = [r for r in records if r.prompt_tokens is not None]
        if answered:
            used = (answered[-1].prompt_tokens or 0) + (answered[-1].completion_tokens or 0)
        view = self.query_one(ConversationView)
        await view.show(rows)
        view.mark_alternatives(shown_labels(entries))
        live = self.live
        if live is not None:
            live.hide()
            # Its question is saved and its answer not yet: the answer continues on screen.
            if live.conversation_id == conversation_id is not None and rows[-1].role == "user":
                live.show_in(await view.add_answer())
        self.query_one(StatusBar).change(used_tokens=used)
        self.query_one(Sidebar).select(conversation_id)
        self.model_actions.conversation_shown(conversation_id)
        self._show_busy()

    def on_conversations_changed(self, _: ConversationsChanged) -> None:
        self.refresh_sidebar()

    async def on_conversation_deleted(self, message: ConversationDeleted) -> None:
        if message.conversation_id == self.conversation_id:
            await self.show_conversation(None)
        self.refresh_sidebar()

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        chosen = event.option.id
        if chosen is not None and chosen != self.conversation_id:
            await self.show_conversation(chosen)
        # Whatever is typed next is for the opened conversation, not the list's keys.
        self.query_one(PromptInput).focus()

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        if self.live is not None:
            where = "" if self.live.view else " in another conversation"
            self.notify(
                f"an answer is still streaming{where} (one at a time): wait, or"
                f" {self.key_hints['cancel']} cancels it; your message stays in the prompt",
                severity="warning",
            )
            # Nothing was sent, so nothing typed may go: keys typed after that Enter may be in
            # the prompt already, and the refused text goes back ahead of them.
            prompt = self.query_one(PromptInput)
            typed_since = prompt.text
            prompt.load_text(f"{event.text}\n{typed_since}" if typed_since else event.text)
            prompt.move_cursor(prompt.document.end)
            return
        turn, view = await self.branches.prepare_send(self.conversation_id, event.text)
        self._start(turn, view)

    def _start(self, turn: Turn, view: AnswerView) -> None:
        # The worker never waits for the screen: it leaves text in the answer's buffer, and the
        # screen takes it in frames paced to the CPU time drawing costs.
        self.live = LiveAnswer(self, view)
        # Known now unless the turn starts a conversation (then: once its question is saved).
        self.live.conversation_id = turn.conversation_id
        self._show_busy()
        self._generate(turn, self.live)

    async def action_new_conversation(self) -> None:
        await self.show_conversation(None)
        self.query_one(PromptInput).focus()

    def action_cancel(self) -> None:
        """Stop the streaming answer, whichever conversation is on screen; else drop the
        message selection; else leave an edit."""
        if self.live is not None:
            self.live.cancel.set()
        elif self.query_one(ConversationView).selected_message is not None:
            self.query_one(ConversationView).clear_selection()
        else:
            self.branches.abort_edit()

    async def action_regenerate(self) -> None:
        if self.refuse_while_streaming():
            return
        prepared = await self.branches.prepare_regenerate(self.conversation_id)
        if prepared is not None:
            self._start(*prepared)

    async def action_previous_alternative(self) -> None:
        if not self.refuse_while_streaming() and self.branches.flip(self.conversation_id, -1):
            await self.show_conversation(self.conversation_id)

    async def action_next_alternative(self) -> None:
        if not self.refuse_while_streaming() and self.branches.flip(self.conversation_id, +1):
            await self.show_conversation(self.conversation_id)

    def action_edit_last_message(self) -> None:
        if not self.refuse_while_streaming():
            self.branches.start_edit(self.conversation_id)

    def action_select_message(self, step: int) -> None:
        self.query_one(ConversationView).select_message(step)

    def action_toggle_thinking(self) -> None:
        if self.query_one(ConversationView).toggle_thinking() is None:
            selected = self.query_one(ConversationView).selected_message is not None
            what = "the selected message has no reasoning" if selected else "no reasoning here"
            self.notify(f"{what} to show", severity="warning")

    def action_copy_answer(self) -> None:
        self.copier.copy_message()

    def action_copy_code_block(self) -> None:
        self.copier.copy_code_block()

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        loop = asyncio.get_running_loop()
        for number in ENDING_SIGNALS:
            loop.remove_signal_handler(number)

    def _end_by_signal(self, number: int) -> None:
        """`kill`, `timeout` or a closed terminal: quit as Ctrl+Q does, so that a streaming
        answer is saved as cancelled, with the exit code such a signal gives (128 + it)."""
        self.action_cancel()
        self.exit(return_code=128 + number)

    async def action_quit(self) -> None:
        # A streaming answer stops at the next token and is saved as cancelled before the
        # process ends (Python waits for worker threads at exit).
        self.action_cancel()
        self.exit()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_rows(key_actions(self, keymap=self.keymap_overrides))))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        return palette_commands(
            self, super().get_system_commands(screen), keymap=self.keymap_overrides
        )

    def action_filter_conversations(self) -> None:
        self.query_one(Sidebar).focus_filter()

    def action_rename_conversation(self) -> None:
        conversation_actions.rename(self, self)

    def action_delete_conversation(self) -> None:
        conversation_actions.delete(self, self)

    def action_export_conversation(self) -> None:
        conversation_actions.export(self, self)

    def action_model_picker(self) -> None:
        self.model_actions.open_picker()

    def action_pull_model(self) -> None:
        self.model_actions.open_pull()

    def action_conversation_settings(self) -> None:
        self.model_actions.open_settings()

    def action_focus_sidebar(self) -> None:
        self.query_one(Sidebar).focus_list()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "scroll_conversation":
            return pages_conversation(self)
        return super().check_action(action, parameters)

    def action_scroll_conversation(self, pages: int) -> None:
        view = self.query_one(ConversationView)
        if pages < 0:
            view.scroll_page_up()
        else:
            view.scroll_page_down()

    def action_focus_prompt(self) -> None:
        self.query_one(PromptInput).focus()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _preload(self, conversation: ConversationRecord | None) -> None:
        """Load the model at start-up, with the opened conversation's context size, so the first
        answer does not wait for it."""
        try:
            model = self.session.choose(
                conversation.model if conversation else None, saved=conversation is not None
            )
            n_ctx = self.session.settings_for(conversation).n_ctx
            self.call_from_thread(self.model_actions.show_model, model.ref, None)
            report, fresh = self.session.ensure_loaded(model, n_ctx)
        except Exception as err:
            self.call_from_thread(self._load_failed, failure_text(err, logger, "loading the model"))
            return
        self.call_from_thread(self.model_actions.show_model, model.ref, report)
        if fresh:
            self.call_from_thread(self.model_actions.warn, report.warnings)

    @work(thread=True, group="warm-up", exit_on_error=False)
    def _warm_up_painting(self) -> None:
        warm_up()

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def _generate(self, turn: Turn, live: LiveAnswer) -> None:
        listener = LiveTurn(
            self, live, self._question_saved, self.model_actions.show_model, self._prompt_read
        )
        try:
            result = self.session.ask(turn, listener, live.cancel)
        except Exception as err:
            listener.show(self._failed, live, failure_text(err, logger, "generation"))
            return
        listener.show(self._answered, live, result.completion)

    def on_text_ended(self, message: TextEnded) -> None:
        message.live.draw_rest()

    def _question_saved(self, conversation_id: str, live: LiveAnswer) -> None:
        live.conversation_id = conversation_id
        # No view means the user moved to another conversation meanwhile.
        if live.view is not None:
            self.conversation_id = conversation_id
        self.refresh_sidebar()

    def _prompt_read(self, live: LiveAnswer, read: int, total: int) -> None:
        """The context meter as soon as the prompt is known, and how far a long prompt's
        reading got, in the answer's place and the status bar (it can take many seconds
        before the first word)."""
        reading = live.show_reading(read, total)
        if live.view is None:
            return
        busy = "answering"
        if reading is not None:
            busy = " · ".join(
                part for part in (f"reading the prompt {read}/{total}", reading.left()) if part
            )
        self.query_one(StatusBar).change(used_tokens=total, busy=busy)

    def _load_failed(self, message: str) -> None:
        self.query_one(StatusBar).change(loading=False)
        self.notify(message, title="Could not load the model", severity="error")

    async def _answered(self, live: LiveAnswer, completion: Completion) -> None:
        self.live = None
        on_screen = live.view is not None
        await live.finish(completion)
        status = self.query_one(StatusBar)
        # An answer cancelled before its first token has no speed: the last real one stays.
        if completion.timings.decode_tokens_per_s > 0:
            status.change(tokens_per_s=completion.timings.decode_tokens_per_s)
        if on_screen:
            usage = completion.usage
            known = usage.prompt_tokens is not None and usage.completion_tokens is not None
            used = (usage.prompt_tokens or 0) + (usage.completion_tokens or 0) if known else None
            status.change(used_tokens=used)
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
