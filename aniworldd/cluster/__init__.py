"""More than one process: roles, Redis fan-out, queue claims and the elected leader (README "More than one
process"). Nothing here is imported by the single-process default."""
