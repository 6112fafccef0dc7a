"""Floor 2, dataset preparation, apart from the training data path: annotation converters,
video decoding and probing, feature extraction and the synthetic benchmark. Reads and writes
what :mod:`logo_tal.data` reads; nothing on the training path imports it."""
