"""``avgn-edge bench``: speed, cost and accuracy measured side by side in one run."""
