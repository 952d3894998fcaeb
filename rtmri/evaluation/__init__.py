"""`rtmri eval`: a bundle against the original videos of each condition of the study, next
to baselines, with the same streaming code path as live (offline-paced). No torch."""
