"""The SB3 callback's teacher-cost totals across a resume."""

import json
from types import SimpleNamespace

from shiftgrid.agents.run.rundir import RunDir
from shiftgrid.agents.run.services import RunState
from shiftgrid.agents.sb3.callbacks import ServicesCallback
from shiftgrid.envs.teacher.cost import COST_KEY


def test_a_resumed_run_reports_its_saved_totals_even_when_the_teacher_stays_quiet(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.teacher.mkdir(parents=True)
    (run_dir.teacher / "cost.json").write_text(json.dumps({"utterances": 3.0, "advice_tokens": 12.0}))
    state = RunState()
    run = SimpleNamespace(state=state, run_dir=run_dir, on_step=lambda n, episodes: True,
                          teacher_cost=lambda **totals: state.teacher.update(totals))
    model = SimpleNamespace(num_timesteps=128, get_env=lambda: SimpleNamespace(has_attr=lambda name: False), logger=None)
    callback = ServicesCallback(run)  # type: ignore[arg-type]
    callback.init_callback(model)  # type: ignore[arg-type]
    callback.on_training_start({}, {})
    callback.update_locals({"infos": [{COST_KEY: {"utterances": 0, "advice_tokens": 0}}], "dones": [False]})
    assert callback.on_step()
    # a faded-out teacher says nothing more; the totals (what cost.json and target.json show) are still the saved ones
    assert state.teacher == {"utterances": 3.0, "advice_tokens": 12.0}
