"""The stages of a run, in order: pull → records (typed views) → map → plan → push."""
