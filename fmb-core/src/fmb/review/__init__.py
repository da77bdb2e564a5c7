"""``fmb review``: one review queue over every ranking of some run folders, saved labels, active-learning
re-ranking (astronomaly's NeighbourScore) and a simulated expert. See docs/review.md.

Modules: queue (merge the systems' top candidates), labels (the saved labels file), active (re-ranking),
simulate (the simulated expert), app (the local web app).
"""
