"""Floor 3: the Lightning side: the LightningModule, callbacks, checkpointing (one home:
:mod:`logo_tal.engine.checkpoints`) and the test results' W&B panels."""
