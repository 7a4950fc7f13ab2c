"""``tensor-ppo``: PPO whose rollouts run on the tensor engine, on the engine's device, read top to bottom.

The loop, as in CleanRL: collect ``n_steps`` steps of ``n_envs`` engine envs (every tensor stays
on the device: no NumPy round trip, no per-env Python, no host synchronisation inside a rollout),
estimate advantages with GAE, then ``n_epochs`` passes of clipped-PPO minibatch updates.

The engine resets an env at the step *after* its episode ended (gymnasium's next-step
auto-reset): that step ignores its action and returns the new episode's first observation.
Such reset steps are kept out of everything: they are not counted in ``num_timesteps``
(which counts the steps an agent acted in, as SB3's does), and they are masked out of the loss.
The observation a reset step starts from is the ended episode's last one, so a truncated
episode is bootstrapped from its true last observation's value, and a terminated one is not.

It is a registry learner like the others: config layers and presets (``presets/tensor-ppo.yaml``,
``hyperparams`` is :class:`~shiftgrid.agents.tensor_ppo.settings.Settings`, the encoder's keywords go in ``extractor``, the engine's
options in ``engine``: ``bank_size``, ``workers``, ``compile``; it runs on ``device``), the run
directory, the checkpoint envelope, ``--resume``, Ctrl-C/SIGTERM saving, the NaN stop, ``best.pt``
on validation seeds, the progress bar and SB3's TensorBoard tags all come from the run services.
The environments are those the engine can express (shiftgrid ids and many of minigrid's own);
for any other, ``--algo ppo`` trains on the minigrid env. ``--teacher`` puts a curriculum teacher over the
engine's levels (:mod:`shiftgrid.agents.training.tensor_curriculum`), which gets each rollout's
advantages (PLR's scores) and says which steps the update may learn from (PLR⊥). ``--advice action
--set advice.protocol=kickstart`` adds a decaying loss toward the oracle's next action on the steps
of the envs it watches (:mod:`shiftgrid.agents.training.kickstart`); ``--advice <granularity> --set
advice.protocol=distill`` trains an advised policy (it reads the teacher's words) on the envs the
teacher watches, whose behaviour the run's advice-free policy learns
(:mod:`shiftgrid.agents.tensor_ppo.advice_distillation`); with ``--advice <granularity>`` alone
(``advice.protocol=observation``, the baseline) the learner's own policy reads the teacher's words in
the envs it watches (silence elsewhere, and in evaluation), with the probability of speaking fading
over ``advice.fade_steps``; its episodes there do not count toward the training-success target. The
teacher speaks at every step of the watched envs (``advice.when`` / ``budget`` are ``--algo ppo``'s).
Not supported here: ``--dream`` and ``--demos`` (``--algo ppo`` takes them).

With ``memory`` > 0 the policy is recurrent (a GRU between the encoder and the heads, see
:class:`~shiftgrid.agents.tensor_ppo.networks.ActorCritic`): its state is carried across rollouts,
one row per env, and zeroed at every episode's first observation (the step after the engine's
reset step; the reset step itself is read with the ended episode's state, which is the state its
value, the truncation bootstrap, needs). The update then takes minibatches of whole env
trajectories of the rollout (``batch_size / n_steps`` envs each) and replays the recurrent state
from the one the rollout started with, as CleanRL's LSTM PPO and SB3-contrib's RecurrentPPO do.

What a checkpoint holds: the network, the optimizer and the counters. A resumed run starts fresh
episodes on levels drawn with ``seed + num_timesteps`` (and, with memory, a zero state: the
recurrent state at a rollout boundary is not saved); an interrupted rollout is not counted.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.run.train import train
    >>> config = TrainConfig(algo="tensor-ppo", env="MiniGrid-Empty-5x5-v0", steps=512, n_envs=8, device="cpu",
    ...                      progress=False, run_dir=tempfile.mkdtemp() + "/run", eval=EvalConfig(freq=0),
    ...                      hyperparams={"n_steps": 32, "batch_size": 128}, engine={"bank_size": 64})
    >>> result = train(config)
    >>> result.num_timesteps >= 512, (result.run_dir / "checkpoints/latest.pt").exists()
    (True, True)
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from shiftgrid.agents.run.config import ConfigError, TrainConfig, from_mapping
from shiftgrid.agents.run.services import Episode, RunServices
from shiftgrid.agents.sb3.build import schedule
from shiftgrid.agents.tensor_ppo.advice_distillation import advised_network, distillation_loss
from shiftgrid.agents.training.kickstart import NO_LABEL, OracleLabels, advice_weight
from shiftgrid.agents.tensor_ppo.networks import ActorCritic, as_batch
from shiftgrid.agents.tensor_ppo.rollout import Rollout, gae
from shiftgrid.agents.tensor_ppo.settings import Settings, check_supported
from shiftgrid.envs.language import MISSION_VOCAB_SIZE
from shiftgrid.envs.registration import UnknownEnvError
from shiftgrid.envs.teacher.advice import fade_probability
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN
from shiftgrid.world_models.device import resolve_device


class TensorPPO:
    """The ``tensor-ppo`` learner (see the module docstring); ``policy`` is its :class:`ActorCritic`."""

    #: With ``deterministic``, :meth:`predict`'s action is a function of the observation alone (evaluation may use
    #: it): True without memory; an instance with memory sets it False.
    acts_on_observation_only = True

    def __init__(self, config: TrainConfig, *, training: bool):
        self.config, self.training = config, training
        self.settings: Settings = from_mapping(Settings, config.hyperparams, "hyperparams.")
        self.settings.check(config.n_envs)
        check_supported(config)
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        # advice as words in the observation: the learner's own policy reads them (silence: all padding)
        self.reads_advice = config.advice.enabled and config.advice.protocol == "observation"
        try:
            self.policy = (advised_network(config.extractor, self.settings.hidden) if self.reads_advice else
                           ActorCritic.build(self.settings.network, MISSION_VOCAB_SIZE, config.extractor,
                                             self.settings.hidden, self.settings.memory)).to(self.device)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.acts_on_observation_only = self.policy.core is None  # with memory, an action depends on the episode so far
        self.distilling = config.advice.enabled and config.advice.protocol == "distill"
        # advice distillation: the policy that reads the teacher's words and plays the watched envs
        self.advised = advised_network(config.extractor, self.settings.hidden).to(self.device) if self.distilling else None
        self.env: Any = None
        self.labels: OracleLabels | None = None  # the teacher that labels (or speaks in) the watched envs (made with the env)
        self._label_counts: tuple[int, int, int] = (0, 0, 0)  # its labels given, states without a plan and words said, kept across resumes
        self.env = self._make_env(config.seed) if training else None  # the bank is built (or loaded) here
        self.lr: Callable[[float], float] | float = schedule("learning_rate", self.settings.learning_rate)
        self._optimizer: torch.optim.Adam | None = None  # made when first used (see optimizer)
        self._optimizer_state: dict[str, Any] | None = None  # a checkpoint's, until the optimizer is made
        self.num_timesteps, self.n_updates = 0, 0
        self._tick = 0  # engine steps of this learn call
        self._pending: list[tuple[int, int, Episode]] = []  # ended episodes not yet reported: (start tick, env, episode)
        self.generator = torch.Generator(device=self.device)

    @property
    def optimizer(self) -> torch.optim.Adam:
        """Adam over the policy, made when first used: an evaluation never makes one (making it imports torch's
        compiler, seconds of ``shiftgrid evaluate``'s start)."""
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(self._parameters(), lr=self._lr(0), eps=1e-5, fused=True)
            if self._optimizer_state is not None:
                self._optimizer.load_state_dict(self._optimizer_state)
                self._optimizer_state = None
        return self._optimizer

    def _parameters(self) -> list[nn.Parameter]:
        """What the optimizer trains: the policy's parameters, and the advised policy's when distilling."""
        return list(self.policy.parameters()) + (list(self.advised.parameters()) if self.advised is not None else [])

    # -- the environments ------------------------------------------------------------------------
    def _make_env(self, seed: int) -> Any:
        """The engine's vector env on the device, drawing training levels from the split's bank with ``seed``."""
        from shiftgrid.agents.training.curriculum import build_teacher
        from shiftgrid.agents.training.tensor_curriculum import curriculum_tensor_env
        from shiftgrid.envs.engine.vector import make_tensor_vec

        c = self.config
        teacher = build_teacher(c) if c.teacher.name is not None else None  # a bad one is refused before a bank is built
        try:
            env: Any = make_tensor_vec(c.env, c.n_envs, split=c.split or "train", device=self.device, seed=seed,
                                       **c.engine, **c.env_kwargs)
        except UnknownEnvError as e:
            known = c.env.split(":")[-1] in gym.registry
            raise ConfigError(f"{e}{f'; --algo ppo runs {c.env} on the minigrid env' if known else ''}") from None
        if c.advice.enabled:  # the oracle labels (or advises in) the first watched envs' steps (the engine's states)
            try:
                words = c.advice.granularity if self.distilling or self.reads_advice else None
                self.labels = OracleLabels(env, c.advice.watched_envs, words)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            self.labels.restore_counts(*self._label_counts)
        if teacher is not None:  # it chooses every level among the bank's, and gets the advantages (after_rollout)
            env = curriculum_tensor_env(c, env, teacher=teacher)
            env.scored = True
        return env

    # -- learning --------------------------------------------------------------------------------
    def _lr(self, done_fraction: float) -> float:
        return float(self.lr(1.0 - done_fraction)) if callable(self.lr) else float(self.lr)

    def learn(self, steps: int, run: RunServices) -> None:
        """Train for ``steps`` more steps (see :class:`~shiftgrid.agents.run.registry.Learner`)."""
        seed = self.config.seed + self.num_timesteps
        self.generator.manual_seed(seed)
        if self.num_timesteps and hasattr(self.env, "reseed"):  # resumed: the teacher (restored) keeps its env
            self.env.reseed(seed)
        elif self.num_timesteps:  # resumed: fresh episodes, on levels drawn with another seed than the first run's
            self.close()
            self.env = self._make_env(seed)
        obs, _ = self.env.reset()
        self._tick, self._pending = 0, []
        valid = torch.ones(self.config.n_envs, dtype=torch.bool, device=self.device)
        memory = (self.policy.initial_state(self.config.n_envs, self.device), valid.clone())  # (state, first)
        episode = (torch.zeros(self.config.n_envs, device=self.device),
                   torch.zeros(self.config.n_envs, dtype=torch.int64, device=self.device))
        end, start_steps, started = self.num_timesteps + steps, self.num_timesteps, time.perf_counter()
        while self.num_timesteps < end:
            rollout_start = self.num_timesteps
            rollout, obs, valid, episode, memory = self._collect(obs, valid, episode, memory)
            if self.labels is not None:
                self._label_counts = self.labels.counts()
                labelled, unsolvable, tokens = self._label_counts
                said = {"utterances": labelled, "advice_tokens": tokens} if self.labels.words else {"actions_labelled": labelled}
                run.teacher_cost(**said, states_without_plan=unsolvable)
            stopped = not self._report(rollout, episode[1], run)
            if stopped:
                if run.state.stop_reason != "target":
                    self.num_timesteps = rollout_start  # the unfinished rollout was not learned from
                return
            metrics = self._update(rollout, run)
            if metrics is None:
                return
            metrics["time/fps"] = int((self.num_timesteps - start_steps) / max(time.perf_counter() - started, 1e-9))
            metrics["rollout/distinct_levels"] = self.env.distinct_levels()  # bank levels drawn so far in this call
            if not run.on_update(self.num_timesteps, metrics):
                return

    @torch.no_grad()
    def _collect(self, obs: dict[str, torch.Tensor], valid: torch.Tensor, episode: tuple[torch.Tensor, torch.Tensor],
                 memory: tuple[torch.Tensor, torch.Tensor]) -> tuple[
                     Rollout, dict[str, torch.Tensor], torch.Tensor, tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """``n_steps`` steps of every env; returns the rollout and what to continue from.

        ``episode``: each env's return and length so far; ``memory``: the policy's recurrent state
        and whether the next observation is an episode's first (the step after a reset step).
        """
        T, N, dev = self.settings.n_steps, self.config.n_envs, self.device
        buf = {k: torch.empty((T,) + tuple(v.shape), dtype=v.dtype, device=dev) for k, v in obs.items()}
        f32 = lambda: torch.zeros(T, N, device=dev)  # noqa: E731
        flag = lambda: torch.zeros(T, N, dtype=torch.bool, device=dev)  # noqa: E731
        r = Rollout(buf, torch.zeros(T, N, dtype=torch.int64, device=dev), f32(), f32(), f32(), flag(), flag(), flag(),
                    flag(), f32(), torch.zeros(T, N, dtype=torch.int64, device=dev))
        ret, length = episode
        state, first = memory
        r.state, r.first = state, torch.zeros(T, N, dtype=torch.bool, device=dev)
        speaking = fade_probability(self.config.advice, self.num_timesteps) if self.reads_advice else 0.0
        labeller = self.labels if advice_weight(self.config.advice, self.num_timesteps) > 0 or speaking > 0 else None
        if self.reads_advice:  # the policy reads advice at every step: silence is all padding
            buf["advice"] = torch.zeros((T, N, DEFAULT_MAX_LEN), dtype=torch.int64, device=dev)
            r.spoken = 0 if labeller is None else labeller.watched
        if labeller is not None and not self.distilling and not self.reads_advice:
            r.labels = torch.full((T, N), NO_LABEL, dtype=torch.int64, device=dev)
        if labeller is not None and self.distilling:  # the advised policy plays the watched envs, reading the advice
            r.advised = labeller.watched
            buf["advice"] = torch.zeros((T, N) + tuple(labeller.advice.shape[1:]), dtype=torch.int64, device=dev)
        for t in range(T):
            for k, v in obs.items():
                buf[k][t] = v
            r.first[t] = first
            if labeller is not None:  # the teacher's action in the state this step acts in (host work, watched envs only)
                speak = valid
                if self.reads_advice and speaking < 1.0:  # fading: each watched env's step is advised with this probability
                    speak = valid & (torch.rand(N, device=dev, generator=self.generator) < speaking)
                labels = labeller.label(speak)
                if r.labels.numel():
                    r.labels[t] = labels
            if self.reads_advice:
                if labeller is not None:
                    buf["advice"][t, :labeller.watched] = labeller.advice
                obs = {**obs, "advice": buf["advice"][t]}
            logits, value, state = self.policy.step(obs, state, first)
            if r.advised and labeller is not None and self.advised is not None:
                W = r.advised
                buf["advice"][t, :W] = labeller.advice
                advised_obs = {**{k: v[:W] for k, v in obs.items()}, "advice": labeller.advice}
                advised_logits, advised_value = self.advised(advised_obs)
                logits, value = torch.cat([advised_logits, logits[W:]]), torch.cat([advised_value, value[W:]])
            gumbel = -torch.log(-torch.log(torch.rand(logits.shape, device=dev, generator=self.generator).clamp_min(1e-20)))
            action = (logits + gumbel).argmax(dim=1)
            r.actions[t], r.values[t], r.valid[t] = action, value, valid
            r.logprobs[t] = torch.log_softmax(logits, dim=1).gather(1, action[:, None]).squeeze(1)
            # the actions come from a 7-way categorical: the engine's range check (a host sync) is not needed
            obs, reward, terminated, truncated, info = self.env.step(action, check=False)
            ended = terminated | truncated
            ret, length = ret + reward, length + valid
            r.rewards[t], r.terminated[t], r.ended[t], r.success[t] = reward, terminated, ended, info["success"]
            r.returns_so_far[t], r.lengths[t] = ret, length
            first = ~valid  # the step after the engine's reset step starts an episode
            ret, length, valid = ret * ~ended, length * ~ended, ~ended
        # with advice as words, the bootstrap value is read in silence (the words of the next step are not said yet)
        last = {**obs, "advice": torch.zeros_like(buf["advice"][0])} if self.reads_advice else obs
        r.last_value = self.policy.step(last, state, first)[1]
        return r, obs, valid, (ret, length), (state, first)

    def _report(self, r: Rollout, running: torch.Tensor, run: RunServices) -> bool:
        """Count the rollout's steps and hand finished episodes to the run services, in the order they started; False: stop.

        All envs start together, and short episodes end first: after a (re)start, the first episodes
        to end are the quick ones (successes, where failing runs to the time limit), and 100 of
        them can meet a success target a policy is far from. So an episode is handed on only once
        every episode that started before it has ended (``running``: each env's current episode
        length), which makes every window of reported episodes the outcomes of consecutive starts;
        episodes that started together are handed on in env order, not in the order they ended.
        The advised policy's episodes (advice distillation) are counted in the steps but are not the
        learner's: they are not handed on (training success and its target are the learner's own).
        """
        ticks = self._tick + torch.arange(r.ended.shape[0], device=r.ended.device)[:, None].expand_as(r.ended)
        envs = torch.arange(r.ended.shape[1], device=r.ended.device)[None, :].expand_as(r.ended)
        learners = r.ended & (envs >= r.advised)  # advice distillation: the advised policy's episodes are not the learner's
        ends, env, success, ret, length = (x[learners].cpu().numpy()
                                           for x in (ticks, envs, r.success, r.returns_so_far, r.lengths))
        for end, i, s, g, n in zip(ends, env, success, ret, length):  # advice as words: episodes it spoke in are advised
            self._pending.append((int(end) - int(n) + 1, int(i), Episode(bool(s), float(g), int(n), advised=bool(i < r.spoken))))
        self._tick += r.ended.shape[0]
        self.num_timesteps += int(r.valid.sum())
        oldest = self._tick - int(running.max())  # start of the oldest episode still running
        # episodes that started at the same tick (every env's first) go in env order, which says nothing of their
        # outcome: in the order they ended, the quick successes would come first and could meet the target alone
        ready = sorted((e for e in self._pending if e[0] < oldest), key=lambda e: (e[0], e[1]))
        self._pending = [e for e in self._pending if e[0] >= oldest]
        return run.on_step(self.num_timesteps, [episode for _, _, episode in ready])

    def _update(self, r: Rollout, run: RunServices) -> dict[str, float] | None:
        """``n_epochs`` of clipped-PPO minibatch updates on the rollout's valid steps; None when a loss was not finite."""
        s = self.settings
        advantages, returns = gae(r, s.gamma, s.gae_lambda)
        after_rollout = getattr(self.env, "after_rollout", None)  # a teacher's: scores levels, may restrict the update
        learn = r.valid if after_rollout is None else after_rollout(advantages, r.valid)
        flat = lambda x: x.reshape((-1,) + tuple(x.shape[2:]))  # noqa: E731
        obs = {k: flat(v) for k, v in r.obs.items()}
        actions, old_logprobs, old_values = flat(r.actions), flat(r.logprobs), flat(r.values)
        advantages, returns = flat(advantages), flat(returns)
        index = torch.nonzero(flat(learn)).squeeze(1)
        if len(index) == 0:  # PLR⊥ and no replayed level in this rollout: no update
            return {"train/n_updates": self.n_updates}
        lr = self._lr(min(self.num_timesteps / max(self.config.steps, 1), 1.0))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # policy gradient, value, entropy, approx. KL, clip fraction, loss, kickstart (or distillation)
        sums = torch.zeros(7, device=self.device)
        labels = flat(r.labels) if r.labels.numel() else None
        kick_weight = advice_weight(self.config.advice, self.num_timesteps) if labels is not None or r.advised else 0.0
        count = 0
        for epoch in range(s.n_epochs):
            for mb, logits, value in self._minibatches(r, obs, index, learn):
                if len(mb) == 0:  # envs whose only step here was a reset step (n_steps 1)
                    continue
                distill = torch.zeros((), device=self.device)
                watched = mb % r.valid.shape[1] < r.advised
                # the advised policy acted on the watched envs' steps: PPO's terms there are its own
                if self.advised is not None and r.advised and bool(watched.any()):
                    student_logits = logits[watched]
                    advised_logits, advised_value = self.advised({k: v[mb[watched]] for k, v in obs.items()})
                    logits, value = logits.clone(), value.clone()
                    logits[watched], value[watched] = advised_logits, advised_value
                    distill = distillation_loss(student_logits, advised_logits)
                log_probs = torch.log_softmax(logits, dim=1)
                logprob = log_probs.gather(1, actions[mb][:, None]).squeeze(1)
                entropy = -(log_probs.exp() * log_probs).sum(dim=1).mean()
                log_ratio = logprob - old_logprobs[mb]
                ratio = log_ratio.exp()
                adv = advantages[mb]
                if s.normalize_advantage and len(mb) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - s.clip_range, 1 + s.clip_range)).mean()
                value_loss = 0.5 * (value - returns[mb]).pow(2).mean()
                loss = pg_loss - s.ent_coef * entropy + s.vf_coef * value_loss
                kick = distill
                if labels is not None:  # kickstarting: cross-entropy toward the teacher's action, over the labelled steps
                    mb_labels = labels[mb]
                    kick = (nn.functional.cross_entropy(logits, mb_labels, ignore_index=NO_LABEL, reduction="sum")
                            / (mb_labels != NO_LABEL).sum().clamp_min(1))
                loss = loss + kick_weight * kick
                terms = {"policy gradient": pg_loss, "value": value_loss, "entropy": entropy,
                         "distillation" if self.distilling else "kickstart": kick}
                if not bool(torch.isfinite(loss)):
                    bad = next((name for name, v in terms.items() if not bool(torch.isfinite(v))), "total")
                    run.state.stop_reason = "nan"
                    run.state.detail = f"the {bad} loss was not finite at update {self.n_updates + 1} (epoch {epoch})"
                    return None
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self._parameters(), s.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()
                    clipped = ((ratio - 1).abs() > s.clip_range).float().mean()
                    sums += torch.stack([pg_loss, value_loss, entropy, approx_kl, clipped, loss, kick])
                count += 1
            if s.target_kl is not None and float(sums[3]) / max(count, 1) > 1.5 * s.target_kl:
                break
        self.n_updates += 1
        with torch.no_grad():
            valid = flat(r.valid)
            explained = 1 - torch.var(returns[valid] - old_values[valid]) / torch.var(returns[valid]).clamp_min(1e-8)
        pg, value, entropy, kl, clip, total, kick_loss = (sums / max(count, 1)).tolist()
        name = "distillation" if self.distilling else "kickstart"
        kickstart = {f"train/{name}_loss": kick_loss, f"train/{name}_weight": kick_weight} if self.labels is not None else {}
        return {**kickstart, "train/policy_gradient_loss": pg, "train/value_loss": value, "train/entropy_loss": -entropy,
                "train/approx_kl": kl, "train/clip_fraction": clip, "train/loss": total,
                "train/explained_variance": float(explained), "train/learning_rate": lr,
                "train/clip_range": s.clip_range, "train/n_updates": self.n_updates}

    def _minibatches(self, r: Rollout, obs: dict[str, torch.Tensor], index: torch.Tensor, learn: torch.Tensor
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch's minibatches as ``(flat indices of the steps they learn from, logits, values)``, in a fresh random order.

        ``learn`` (``[n_steps, n_envs]``) marks the steps the update may learn from: the valid ones,
        or fewer where a teacher restricts it (PLR⊥); ``index`` is its flat nonzero indices.
        Feedforward: ``batch_size`` of those steps drawn from the whole rollout. With memory: the
        whole rollout of ``batch_size / n_steps`` envs, replayed from the recurrent state it started
        with (every step feeds the state), then the steps not in ``learn`` left out of the loss.
        """
        s, dev = self.settings, self.device
        if self.policy.core is None:
            order = index[torch.randperm(len(index), device=dev, generator=self.generator)]
            for start in range(0, len(order), s.batch_size):
                mb = order[start:start + s.batch_size]
                yield (mb, *self.policy({k: v[mb] for k, v in obs.items()}))
            return
        steps, n = r.valid.shape
        envs = torch.randperm(n, device=dev, generator=self.generator)
        flat_index = torch.arange(steps * n, device=dev).reshape(steps, n)
        for start in range(0, n, s.batch_size // steps):
            e = envs[start:start + s.batch_size // steps]
            logits, value, _ = self.policy.sequence({k: v[:, e] for k, v in r.obs.items()}, r.state[e], r.first[:, e])
            keep = learn[:, e]
            yield flat_index[:, e][keep], logits[keep], value[keep]

    # -- the Learner interface -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        advised = {"advised": self.advised.state_dict()} if self.advised is not None else {}
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), **advised,
                "counters": {"num_timesteps": int(self.num_timesteps), "n_updates": int(self.n_updates),
                             "actions_labelled": self._label_counts[0], "states_without_plan": self._label_counts[1],
                             "advice_tokens": self._label_counts[2]}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        if self.advised is not None and "advised" in state:
            self.advised.load_state_dict(state["advised"])
        self._optimizer, self._optimizer_state = None, state["optimizer"]  # loaded into Adam when a resumed run first uses it
        counters = state["counters"]
        self.num_timesteps, self.n_updates = int(counters["num_timesteps"]), int(counters["n_updates"])
        labelled, unsolvable, tokens = (int(counters.get(k, 0)) for k in ("actions_labelled", "states_without_plan", "advice_tokens"))
        self._label_counts = (labelled, unsolvable, tokens)
        if self.labels is not None:
            self.labels.restore_counts(*self._label_counts)

    @torch.no_grad()
    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Actions for a batch of observations (NumPy or tensors, SB3's or the engine's layout), SB3's signature.

        With memory, ``state`` is the recurrent state ``(B, memory)`` the previous call returned (None:
        zeros) and ``episode_start`` (B,) marks the envs whose observation starts an episode (their
        state is zeroed), as for SB3-contrib's recurrent policies; without memory the state is None.
        On the device, without NumPy: ``policy.act(obs, state, first)`` (:class:`ActorCritic`).
        """
        batch = as_batch(observation, self.device)
        n = batch["direction"].shape[0]
        if self.reads_advice:  # a policy trained with advice as words acts here without its teacher: silence
            batch["advice"] = torch.zeros(n, DEFAULT_MAX_LEN, dtype=torch.int64, device=self.device)
        memory = (self.policy.initial_state(n, self.device) if state is None or self.policy.core is None
                  else torch.as_tensor(state, dtype=torch.float32, device=self.device))
        first = (torch.zeros(n, dtype=torch.bool, device=self.device) if episode_start is None
                 else torch.as_tensor(np.asarray(episode_start) if not isinstance(episode_start, torch.Tensor) else episode_start,
                                      device=self.device).to(torch.bool).reshape(n))
        actions, memory = self.policy.act(batch, memory, first, deterministic)
        return actions.cpu().numpy(), (memory.cpu().numpy() if self.policy.core is not None else None)

    def close(self) -> None:
        if self.labels is not None:
            self.labels.close()
            self.labels = None
        if self.env is not None:
            self.env.close()
            self.env = None


def TENSOR_PPO(config: TrainConfig, *, training: bool) -> TensorPPO:
    """The registry entry of ``tensor-ppo``."""
    return TensorPPO(config, training=training)
