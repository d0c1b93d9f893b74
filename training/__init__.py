"""Offline training of the ws3d_ros 3D network from rosbags (``ws3d train``).

Layer 5 adapter (see docs/DESIGN.md): it reads bags only through
:mod:`ws3d_ros.data.frames`, preprocesses only through :mod:`ws3d_ros.models.inputs`
and writes checkpoints only through :mod:`ws3d_ros.models.checkpoint`.

Modules:
- :mod:`training.config`: the training YAML (model + data + labels + augment + losses +
  optim + train sections).
- :mod:`training.cache`: the sharded on-disk frame cache with lifted CLIP teacher features.
- :mod:`training.weak_labels`: label fraction, clicks per object, scribbles.
- :mod:`training.fovmix`: the IGNet FOVMix augmentation.
- :mod:`training.labels`: a frame's training labels (weak draw, clicks file, OTOC pseudo
  labels and candidate classes), shared by the trainer and OTOC self-training.
- :mod:`training.samples`: one cached frame -> network inputs and loss targets.
- :mod:`training.losses`: distillation, text-space CE, one-way contrastive, offsets.
- :mod:`training.loss_registry`: every loss by config name (one name -> factory map).
- :mod:`training.trainer`: the training loop (AdamW + cosine, resume, DDP).
"""
