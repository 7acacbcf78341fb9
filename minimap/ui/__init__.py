"""`minimap ui`: the web page over the service layer (runs, a run's tasks, a mapped task's instances, one
instance, workers) and its JSON API. Needs the `ui` extra: pip install 'minimap[ui]'."""
