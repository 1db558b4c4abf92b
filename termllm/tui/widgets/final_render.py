"""The final full render of a streamed answer, at the cost of what actually changed.

While an answer streams, Markdown.append() re-parses only from the last top-level block, so a
full parse of the finished text can split blocks differently; the answer is therefore parsed
once more in full when it ends. Replacing every block (Markdown.update) would rebuild a long
answer's hundreds of widgets, highlighting every code block again, and stall the event loop
just as the last tokens arrive. Here the streamed top-level blocks that the full parse
reproduces (same kind of block over the same source lines) stay on screen; only the rest is
built and mounted, a few blocks at a time. An answer with link reference definitions (which
change blocks above them) gets a plain full update.
"""

from __future__ import annotations

import asyncio

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

# Blocks built or mounted between two returns to the event loop.
BATCH = 8


async def render_final(document: Markdown, content: str) -> None:
    """Make `document` show the full parse of `content`; it must already show a start of it."""
    if not document.source or not content.startswith(document.source):
        await document.update(content)
        return
    env: dict[str, object] = {}
    tokens = await asyncio.get_running_loop().run_in_executor(
        None, MarkdownIt("gfm-like").parse, content, env
    )
    if env.get("references"):
        # A link definition changes blocks above it, which the stream drew without it.
        await document.update(content)
        return
    async with document.lock:
        document._markdown = content
        shown = [child for child in document.children if isinstance(child, MarkdownBlock)]
        # Where each top-level block starts in the token stream (blocks nest by level).
        starts = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map]
        kept = 0
        while kept < min(len(shown), len(starts)) and _same(shown[kept], tokens[starts[kept]]):
            kept += 1
        fresh: list[MarkdownBlock] = []
        rest = tokens[starts[kept] :] if kept < len(starts) else []
        for count, block in enumerate(document._parse_markdown(rest), 1):
            fresh.append(block)
            if count % BATCH == 0:
                await asyncio.sleep(0)  # building a block highlights its code
        with document.app.batch_update():
            await document.remove_children(shown[kept:])
            await document.mount_all(fresh[:BATCH])
        for start in range(BATCH, len(fresh), BATCH):
            await asyncio.sleep(0)
            await document.mount_all(fresh[start : start + BATCH])


def _same(block: MarkdownBlock, token: Token) -> bool:
    # A block is named after the token type that opened it.
    return (
        block.name == token.type
        and token.map is not None
        and block.source_range == tuple(token.map)
    )
