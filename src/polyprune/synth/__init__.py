"""The synthetic multilingual world of the demo: languages, meanings, corpus, the nine tasks.

See docs/demo-world.md for its design and the `world:` config block.
"""

from .world import World

__all__ = ["World"]
