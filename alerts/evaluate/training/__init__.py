"""Offline: the fall data-set readers (SisFall, UMAFall), the training corpus, augmentation and
the training command. Nothing at run time imports this package; the image does not ship it."""
