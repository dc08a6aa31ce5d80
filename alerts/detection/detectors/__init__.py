"""Small pure detectors: a typed event (or window) and ``now`` in, a typed verdict out."""
