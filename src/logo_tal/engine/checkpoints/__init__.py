"""Everything about checkpoints, in one place (docs/decisions.md D101).

* :mod:`.files`: atomic, finite, ``weights_only`` checkpoint files (Lightning's public
  ``CheckpointIO`` plugin interface).
* :mod:`.random_state`: the global random states, saved and restored by a callback.
* :mod:`.runs`: a run rebuilt from its checkpoint alone (config, class names, weights), and
  the checkpoint a training run resumes from (``ckpt_path=auto``).

Checkpoints are written by Lightning's own ``ModelCheckpoint`` (conf/callbacks/default.yaml:
``last.ckpt`` after every epoch, through the atomic plugin).
"""
