"""FP16 and INT8 (explicit Q/DQ) variants of a bundle, calibrated and measured on the CPU."""
