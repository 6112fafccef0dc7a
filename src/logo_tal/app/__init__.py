"""Floor 4, shared by the commands at the package root: building a run's parts from its config
(:mod:`.build`), the Hydra command wrapper (:mod:`.cli`), the config resolvers and checks."""
