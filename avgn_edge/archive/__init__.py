"""Video archives: the JSON lines of ``avgn-edge run`` (records.py), resumable, and the same
over a Ray cluster (ray_job.py: ``avgn-edge run DIR --ray [ADDRESS]``)."""
