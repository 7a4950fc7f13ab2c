"""The mission grammar's words: how objects and clauses are said, and the closed vocabulary.

Every mission string in shiftgrid is built from the phrases here, so the token vocabulary
(:data:`VOCAB`) covers the whole grammar and the mission wrapper never meets an unknown word.

Example:
    >>> describe("red", "ball")
    'the red ball'
    >>> VOCAB.index("ball") > 0
    True
"""

from __future__ import annotations

from minigrid.core.constants import COLOR_NAMES

#: Colours and describable object types (doors are describable; walls, goals and lava are not).
COLORS: tuple[str, ...] = tuple(COLOR_NAMES)
OBJECT_TYPES: tuple[str, ...] = ("ball", "box", "key")
DESCRIBABLE_TYPES: tuple[str, ...] = OBJECT_TYPES + ("door",)

#: Words the grammar uses besides colours and object types.
GRAMMAR_WORDS: tuple[str, ...] = (
    "go", "to", "pick", "up", "put", "next", "open", "the", "a", "and", "then",
    "get", "reach", "goal", "use", "key", "door", "of", "your", "choice", "you",
    "traverse", "maze", "avoid", "lava", ",",
    # minigrid's and BabyAI's own missions, so their environments tokenize without unknowns
    "after", "behind", "front", "in", "on", "left", "right", "object", "square", "green",
    "fetch", "grab", "unlock", "keys", "room", "same", "color", "as", "is", "at", "end", "hall",
    "get", "matching", "corridor", "exit", "enter", "objects", "hallway", "find", "opening",
    "rooms", "near", "must", "from",
)

#: Words a teacher's advice adds to the grammar's ("turn left", "go forward", "the red box is ahead").
ADVICE_WORDS: tuple[str, ...] = ("turn", "forward", "drop", "ahead", "here", "done")

#: Index 0 is padding, 1 is unknown; the grammar's words are sorted, the advice words follow them
#: (sorted too), so the grammar's ids did not move when advice came.
PAD, UNK = "<pad>", "<unk>"
_GRAMMAR_VOCAB = tuple(sorted(set(COLORS + DESCRIBABLE_TYPES + GRAMMAR_WORDS) - {PAD, UNK}))
VOCAB: tuple[str, ...] = (PAD, UNK) + _GRAMMAR_VOCAB + tuple(sorted(set(ADVICE_WORDS) - set(_GRAMMAR_VOCAB)))
#: Token ids below this are padding, unknown and the grammar's words: a missions-only token space
#: stops here, so learners trained before advice existed keep their observation space.
MISSION_VOCAB_SIZE: int = 2 + len(_GRAMMAR_VOCAB)


def describe(color: str, obj_type: str) -> str:
    """Definite description of a unique object: ``'the red ball'``."""
    return f"the {color} {obj_type}"


def tokenize(text: str) -> list[str]:
    """Split a mission into grammar words; commas become their own token."""
    return text.replace(",", " , ").split()
