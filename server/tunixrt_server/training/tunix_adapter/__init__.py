"""The one package that knows Tunix, JAX, Flax, Optax, Orbax and qwix.

Tunix's API moves between releases (google-tunix is pinned to 0.1.7); whatever
depends on its internals lives here and nowhere else. Facts this relies on:
per-step metrics reach jax.monitoring listeners one step late (when the next
step is dispatched, i.e. as soon as the step's loss is ready); trainer.close()
clears every listener, so one run per process; ending the data iterator stops
train() cleanly and still saves a final checkpoint; a new trainer on the same
checkpoint directory resumes from its newest step; the training hooks'
on_eval_step_end runs right after each evaluation (and the one before the
first step) with the trainer's current parameters; a Tunix Sampler shares the
model's variables, so it decodes with whatever the model holds now.

    models.py       model configs, tokenizers, building, restoring checkpoints
    trainer.py      the SFT run: data preparation, optimiser, Tunix PeftTrainer
    grpo.py         the GRPO run: RLCluster, GRPOLearner, prompts, the eval cadence
    grpo_rewards.py the server's rewards as Tunix's reward and metric functions
    grpo_progress.py Tunix's RL scalars joined into one step event per update
    progress.py     the Listener a run reports to; Tunix's scalars to it and TensorBoard
    exact_match.py  the eval hook: exact match on a fixed sample, best checkpoint, patience
    decoding.py     greedy/temperature decoding in a few fixed shapes
    sharding.py     the fsdp x tp device mesh and placing parameters on it
    distributed.py  one run over several hosts, process 0 deciding
    runtime.py      versions, backend, devices and parameter counts, for GetServerInfo
    hf_export.py    a run's weights back out in the Hugging Face layout
"""

from .decoding import Decoder, InferenceModel
from .grpo import train_grpo
from .progress import DataInfo, Listener
from .trainer import TrainResult, train

__all__ = [
    "DataInfo",
    "Decoder",
    "InferenceModel",
    "Listener",
    "TrainResult",
    "train",
    "train_grpo",
]
