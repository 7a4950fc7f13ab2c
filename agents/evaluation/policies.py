"""How a policy trained elsewhere meets shiftgrid's evaluator: its action interface and its observation wrapper.

- :func:`as_predictor`: anything with SB3's ``predict(obs, state, episode_start, deterministic)``
  is used as it is; a plain batched function ``fn(obs_batch) -> actions`` (a dict of numpy
  arrays, one row per env, in; one integer action per row out) is wrapped into a
  :class:`FunctionPolicy` with that ``predict``.
- :func:`observation_wrapper`: how the policy sees the env, by name (``tokens``: shiftgrid's
  own view, missions as token ids; ``image``: minigrid's ``ImgObsWrapper``; ``flat``:
  minigrid's ``FlatObsWrapper``), as ``MODULE:CALLABLE``, or as a callable env -> env.

Example:
    >>> import numpy as np
    >>> forward = as_predictor(lambda obs: np.full(len(obs["image"]), 2))
    >>> forward.predict({"image": np.zeros((3, 7, 7, 3))})[0].tolist()
    [2, 2, 2]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from shiftgrid.envs.targets import import_target

if TYPE_CHECKING:
    from shiftgrid.agents.evaluation.episodes import ObservationWrapper

#: Observation wrappers by name: ``tokens`` is what shiftgrid's learners train on (the default).
WRAPPERS = ("tokens", "image", "flat")


class FunctionPolicy:
    """A batched function ``fn(obs_batch) -> actions`` behind SB3's ``predict`` (no memory; ``deterministic`` is ignored).

    Example:
        >>> import numpy as np
        >>> policy = FunctionPolicy(lambda obs: np.zeros(len(obs), dtype=int))
        >>> actions, state = policy.predict(np.zeros((2, 5)))
        >>> actions.tolist(), state
        ([0, 0], None)
    """

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.label = f"policy function {getattr(fn, '__qualname__', type(fn).__name__)}"

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[Any, None]:
        return self.fn(observation), None  # as returned: the evaluator checks it and names what it was


def as_predictor(policy: Any) -> Any:
    """``policy`` itself if it has a callable ``predict``, a :class:`FunctionPolicy` if it is callable.

    Raises:
        TypeError: neither (the message names what was given).

    Example:
        >>> as_predictor(3)
        Traceback (most recent call last):
        TypeError: a policy must have SB3's predict(obs, state, episode_start, deterministic) or be a batched function obs_batch -> actions; got int 3
    """
    if callable(getattr(policy, "predict", None)):
        return policy
    if callable(policy) and not isinstance(policy, type):
        return FunctionPolicy(policy)
    raise TypeError("a policy must have SB3's predict(obs, state, episode_start, deterministic) or be a batched "
                    f"function obs_batch -> actions; got {type(policy).__name__} {policy!r:.80}")


def _import(target: str) -> Any:
    try:
        obj = import_target(target)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"observation wrapper {target!r} cannot be loaded: {e}") from None
    if not callable(obj):
        raise ValueError(f"observation wrapper {target!r} is a {type(obj).__name__}, not a callable env -> env")
    return obj


def observation_wrapper(spec: str | ObservationWrapper | None) -> ObservationWrapper | None:
    """The wrapper named by ``spec`` (see the module docstring); None or ``tokens``: None, shiftgrid's own view.

    Raises:
        ValueError: an unknown name, or a ``MODULE:CALLABLE`` that cannot be loaded (the message lists the valid forms).

    Example:
        >>> observation_wrapper("image").__name__, observation_wrapper("tokens")
        ('ImgObsWrapper', None)
    """
    if spec is None or callable(spec):
        return spec
    if spec == "tokens":
        return None
    if spec in ("image", "flat"):
        from minigrid.wrappers import FlatObsWrapper, ImgObsWrapper

        return ImgObsWrapper if spec == "image" else FlatObsWrapper
    module, sep, attr = str(spec).partition(":")
    if sep and module and attr:
        return _import(str(spec))
    raise ValueError(f"unknown observation wrapper {spec!r}; valid: {', '.join(WRAPPERS)}, MODULE:CALLABLE "
                     "(a callable env -> env), or a callable")


def wrapper_name(wrapper: ObservationWrapper | None) -> str:
    """How the report names the view a policy had.

    Example:
        >>> wrapper_name(None), wrapper_name(observation_wrapper("flat"))
        ('tokens (MissionTokens, as shiftgrid trains)', 'minigrid.wrappers.FlatObsWrapper')
    """
    if wrapper is None:
        return "tokens (MissionTokens, as shiftgrid trains)"
    return f"{getattr(wrapper, '__module__', '?')}.{getattr(wrapper, '__qualname__', type(wrapper).__name__)}"
